# Run by cmake -P after a test binary links (cmake/test_groups.cmake): lists its GoogleTest tests
# and writes CTEST_FILE, one CTest test a group of at most GROUP_SIZE consecutive tests of a suite.
foreach(var TEST_EXECUTABLE TEST_WORKING_DIR TEST_TIMEOUT TEST_LABELS GROUP_SIZE CTEST_FILE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "test_groups_write.cmake needs -D ${var}=...")
  endif()
endforeach()

execute_process(COMMAND ${TEST_EXECUTABLE} --gtest_list_tests
                WORKING_DIRECTORY ${TEST_WORKING_DIR}
                TIMEOUT 120
                OUTPUT_VARIABLE listing
                ERROR_VARIABLE listing_errors
                RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${TEST_EXECUTABLE} --gtest_list_tests failed (${result}):\n"
                      "${listing}${listing_errors}")
endif()

# "Suite." lines (a typed suite adds "  # TypeParam = ..."), then "  Test" lines (a value-
# parameterised one adds "  # GetParam() = ...").
string(REPLACE "\n" ";" lines "${listing}")
set(suites "")
set(disabled "")
set(alone "")
foreach(line IN LISTS lines)
  if(line MATCHES "^([^ ]+)\\.(  #.*)?$")
    set(suite ${CMAKE_MATCH_1})
  elseif(line MATCHES "^  ([^ ]+)")
    if(NOT DEFINED suite)
      message(FATAL_ERROR "a test before any suite in ${TEST_EXECUTABLE}'s list: '${line}'")
    endif()
    set(name ${suite}.${CMAKE_MATCH_1})
    # A filter of exact names selects exactly those tests only if no name holds a filter
    # character ('*', '?', ':', '-'); GoogleTest's names are identifiers, '/' and digits.
    if(NOT name MATCHES "^[A-Za-z0-9_/]+\\.[A-Za-z0-9_/]+$")
      message(FATAL_ERROR "test name '${name}' cannot be named exactly in --gtest_filter")
    endif()
    if(name MATCHES "(^|/|\\.)DISABLED_")
      list(APPEND disabled ${name})
    elseif(NOT TEST_ALONE STREQUAL "" AND name MATCHES "${TEST_ALONE}")
      list(APPEND alone ${name})
    else()
      list(FIND suites ${suite} key)
      if(key EQUAL -1)
        list(LENGTH suites key)
        list(APPEND suites ${suite})
        set(tests_${key} "")
      endif()
      list(APPEND tests_${key} ${name})
    endif()
  endif()
endforeach()

set(out "")
macro(write_test test_name filter cost)
  string(APPEND out
         "add_test([==[${test_name}]==] [==[${TEST_EXECUTABLE}]==] [==[--gtest_filter=${filter}]==])\n"
         "set_tests_properties([==[${test_name}]==] PROPERTIES WORKING_DIRECTORY [==[${TEST_WORKING_DIR}]==]"
         " TIMEOUT ${TEST_TIMEOUT} LABELS [==[${TEST_LABELS}]==] COST ${cost})\n")
endmacro()

set(total 0)
set(grouped 0)
foreach(suite IN LISTS suites)
  list(FIND suites ${suite} key)
  list(LENGTH tests_${key} count)
  math(EXPR total "${total} + ${count}")
  # Parts of near-equal size, in the suite's order: [part * count / parts, (part + 1) * ...).
  math(EXPR parts "(${count} + ${GROUP_SIZE} - 1) / ${GROUP_SIZE}")
  foreach(part RANGE 1 ${parts})
    math(EXPR first "(${part} - 1) * ${count} / ${parts}")
    math(EXPR end "${part} * ${count} / ${parts}")
    math(EXPR size "${end} - ${first}")
    list(SUBLIST tests_${key} ${first} ${size} group)
    math(EXPR grouped "${grouped} + ${size}")
    list(JOIN group ":" filter)
    if(parts EQUAL 1)
      set(test_name "${TEST_PREFIX}${suite}.*")
    else()
      set(test_name "${TEST_PREFIX}${suite}.*[${part}/${parts}]")
    endif()
    # COST orders a fresh clone's tests (no cost data yet): larger groups start first.
    write_test("${test_name}" "${filter}" ${size})
  endforeach()
endforeach()
# The parts are consecutive ranges; their sizes add up to the list only if none is left out.
if(NOT grouped EQUAL total)
  message(FATAL_ERROR "${TEST_EXECUTABLE}: ${grouped} of its ${total} tests in groups")
endif()
foreach(name IN LISTS alone)
  write_test("${TEST_PREFIX}${name}" "${name}" 1)
endforeach()
list(LENGTH alone alone_count)
math(EXPR total "${total} + ${alone_count}")
# Disabled tests stay listed, not run, as gtest_discover_tests lists them.
foreach(name IN LISTS disabled)
  write_test("${TEST_PREFIX}${name}" "${name}" 0)
  string(APPEND out "set_tests_properties([==[${TEST_PREFIX}${name}]==] PROPERTIES DISABLED TRUE)\n")
endforeach()
file(WRITE ${CTEST_FILE} "# ${total} GoogleTest tests of ${TEST_EXECUTABLE}, ${alone_count} alone, the rest in groups of at most ${GROUP_SIZE}.\n${out}")
