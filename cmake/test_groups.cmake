# GoogleTest binaries registered with CTest a group of tests per process (the asan preset).
#
# Under ASan+UBSan each test process costs wall outside its test (start-up, LeakSanitizer's exit
# scan): ~0.075 s at load 4 and ~0.35 s at load 10 on the 2-CPU host. A TSan binary starts in
# ~0.01 s and grouping gained nothing measurable there; release pays ~0.06 s a process
# (docs/performance.md, session 42, ci42). Grouped, each CTest test runs up to
# TMR_TEST_GROUP_SIZE consecutive tests of one GoogleTest suite, named exactly in --gtest_filter
# (every test still runs, each under every preset it ran under).
# A failure names its test in the output (GoogleTest's "[  FAILED  ]", or the last "[ RUN      ]"
# line when a sanitizer aborts the process); the CTest name is "<prefix><Suite>.*", with
# "[part/parts]" when the suite is split, so `ctest -R 'Suite\.'` selects the whole suite.
if(TMR_SANITIZE STREQUAL "address")
  set(tmr_test_groups_default ON)
else()
  set(tmr_test_groups_default OFF)
endif()
option(TMR_TEST_GROUPS "Register GoogleTest tests with CTest a group per process, not one each"
       ${tmr_test_groups_default})
set(TMR_TEST_GROUP_SIZE 8 CACHE STRING "Most GoogleTest tests one grouped CTest test runs")
set(TMR_TEST_GROUPS_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_groups_write.cmake)

# tmr_gtest_tests(<target> [TEST_PREFIX <prefix>] TIMEOUT <s> LABELS <label> [ALONE <regex>]):
# as gtest_discover_tests with those arguments, or grouped when TMR_TEST_GROUPS is on. Tests whose
# full name matches ALONE keep a process each (named as gtest_discover_tests names them).
function(tmr_gtest_tests target)
  cmake_parse_arguments(arg "" "TEST_PREFIX;TIMEOUT;LABELS;ALONE" "" ${ARGN})
  if(NOT TMR_TEST_GROUPS)
    gtest_discover_tests(${target} TEST_PREFIX "${arg_TEST_PREFIX}" DISCOVERY_TIMEOUT 120
                         PROPERTIES TIMEOUT ${arg_TIMEOUT} LABELS ${arg_LABELS})
    return()
  endif()
  if(NOT TMR_TEST_GROUP_SIZE GREATER 0)
    message(FATAL_ERROR "TMR_TEST_GROUP_SIZE must be a positive integer")
  endif()
  # Written after each link (the list needs the binary); read by ctest through the include file.
  set(tests_file ${CMAKE_CURRENT_BINARY_DIR}/${target}_groups.cmake)
  set(include_file ${CMAKE_CURRENT_BINARY_DIR}/${target}_groups_include.cmake)
  add_custom_command(
    TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -D TEST_EXECUTABLE=$<TARGET_FILE:${target}>
            -D TEST_WORKING_DIR=${CMAKE_CURRENT_BINARY_DIR} -D "TEST_PREFIX=${arg_TEST_PREFIX}"
            -D TEST_TIMEOUT=${arg_TIMEOUT} -D TEST_LABELS=${arg_LABELS}
            -D GROUP_SIZE=${TMR_TEST_GROUP_SIZE} -D CTEST_FILE=${tests_file}
            -D "TEST_ALONE=${arg_ALONE}"
            -P ${TMR_TEST_GROUPS_SCRIPT}
    BYPRODUCTS ${tests_file}
    VERBATIM)
  file(WRITE ${include_file}
       "if(EXISTS \"${tests_file}\")\n"
       "  include(\"${tests_file}\")\n"
       "else()\n"
       "  add_test(${target}_NOT_BUILT ${target}_NOT_BUILT)\n"
       "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${include_file})
endfunction()
