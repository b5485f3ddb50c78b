# tmr_add_example(<name> SOURCES <files...> [LIBRARIES <targets...>])
#
# Builds an example as an OBJECT library (so its self-registration always links) and lists it in
# the global property TMR_EXAMPLE_LIBRARIES, which the `tmr` command and the example tests link.
include_guard(GLOBAL)

function(tmr_add_example name)
  cmake_parse_arguments(PARSE_ARGV 1 EXAMPLE "" "" "SOURCES;LIBRARIES")
  set(target tmr_example_${name})
  add_library(${target} OBJECT ${EXAMPLE_SOURCES})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/examples)
  target_link_libraries(${target} PUBLIC tmr tmr_example_common ${EXAMPLE_LIBRARIES})
  set_property(GLOBAL APPEND PROPERTY TMR_EXAMPLE_LIBRARIES ${target})
endfunction()
