# Runs COMMAND with ARGS ('|'-separated) and passes only when it exits non-zero and its output
# (stdout and stderr) matches EXPECT. Used by the CLI tests of bad command lines and failed checks.
string(REPLACE "|" ";" arguments "${ARGS}")
execute_process(COMMAND ${COMMAND} ${arguments} RESULT_VARIABLE status OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT 120)
if(status EQUAL 0)
  message(FATAL_ERROR "expected a non-zero exit, got 0. Output:\n${out}${err}")
endif()
if(NOT "${out}${err}" MATCHES "${EXPECT}")
  message(FATAL_ERROR "exit ${status} but the output does not match '${EXPECT}':\n${out}${err}")
endif()
message(STATUS "exit ${status}, output matches '${EXPECT}'")
