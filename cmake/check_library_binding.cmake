# Checks how libtmr binds its calls (the ctest `build.library_binding`; CMakeLists.txt builds the
# library with -Wl,-Bsymbolic-functions and, in plain builds, -fno-plt):
#   - no dynamic relocation names a function the library defines: its calls to its own functions,
#     and the function addresses it stores, are bound when it is linked (no @plt stub on the
#     submit path, no interposition);
#   - with NO_PLT, no relocation is a PLT slot: calls out of the library go through the GOT.
# Usage: cmake -DREADELF=<readelf> -DLIB=<libtmr.so> -DNO_PLT=ON|OFF -P check_library_binding.cmake
foreach(var READELF LIB NO_PLT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_library_binding: ${var} is not set")
  endif()
endforeach()

execute_process(COMMAND ${READELF} -W --dyn-syms ${LIB} OUTPUT_VARIABLE symbols
                RESULT_VARIABLE symbols_rc)
execute_process(COMMAND ${READELF} -W -r ${LIB} OUTPUT_VARIABLE relocations
                RESULT_VARIABLE relocations_rc)
if(NOT symbols_rc EQUAL 0 OR NOT relocations_rc EQUAL 0)
  message(FATAL_ERROR "check_library_binding: ${READELF} failed on ${LIB}")
endif()

# The functions the library defines (a section index, not UND), by name without a version.
set(defined_functions "")
string(REPLACE "\n" ";" symbol_lines "${symbols}")
foreach(line IN LISTS symbol_lines)
  if(line MATCHES "^ *[0-9]+: [0-9a-f]+ +[0-9]+ FUNC +[A-Z]+ +[A-Z]+ +[0-9]+ ([^@ ]+)")
    list(APPEND defined_functions "${CMAKE_MATCH_1}")
  endif()
endforeach()
list(LENGTH defined_functions defined_count)
if(defined_count EQUAL 0)
  message(FATAL_ERROR "check_library_binding: no defined function read from ${LIB}")
endif()

set(bound_late "")
set(plt_slots 0)
string(REPLACE "\n" ";" relocation_lines "${relocations}")
foreach(line IN LISTS relocation_lines)
  if(NOT line MATCHES "^[0-9a-f]+ +[0-9a-f]+ +([A-Z0-9_]+) +[0-9a-f]+ ([^@ ]+)")
    continue()
  endif()
  set(type "${CMAKE_MATCH_1}")
  set(name "${CMAKE_MATCH_2}")
  if(type MATCHES "_JUMP_SLOT$")
    math(EXPR plt_slots "${plt_slots} + 1")
  endif()
  list(FIND defined_functions "${name}" found)
  if(NOT found EQUAL -1)
    list(APPEND bound_late "${type} ${name}")
  endif()
endforeach()

set(failures "")
list(LENGTH bound_late late_count)
if(late_count GREATER 0)
  list(GET bound_late 0 first)
  string(APPEND failures "${late_count} dynamic relocations name functions the library defines "
         "(first: ${first}); is it linked with -Wl,-Bsymbolic-functions?\n")
endif()
if(NO_PLT AND plt_slots GREATER 0)
  string(APPEND failures "${plt_slots} PLT slot relocations; is it compiled with -fno-plt?\n")
endif()
if(failures)
  message(FATAL_ERROR "check_library_binding: ${LIB}:\n${failures}")
endif()
message(STATUS "check_library_binding: ${LIB}: ${defined_count} functions, all bound inside it; "
               "${plt_slots} PLT slots")
