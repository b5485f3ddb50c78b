# Installs the build tree BUILD into a fresh prefix under WORK, then builds and runs consumers of
# the installed package: a CMake project (find_package(tmr)), a pkg-config build, the installed
# `tmr` command and `python3 -m tmr run` compiling a kernels folder against the installed headers.
function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err
                  TIMEOUT 300)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${what} failed (${status}):\n${out}\n${err}")
  endif()
  set(step_output "${out}${err}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK})
set(prefix ${WORK}/prefix)
step("cmake --install" ${CMAKE_COMMAND} --install ${BUILD} --prefix ${prefix})
foreach(expected include/tmr/tmr.hpp include/tmr/kernel.hpp bin/tmr lib/cmake/tmr/tmrConfig.cmake
        lib/pkgconfig/tmr.pc lib/python3/dist-packages/tmr/__init__.py)
  if(NOT EXISTS ${prefix}/${expected})
    message(FATAL_ERROR "the install has no ${expected}")
  endif()
endforeach()

step("configuring the consumer" ${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK}/consumer -G Ninja
     -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
step("building the consumer" ${CMAKE_COMMAND} --build ${WORK}/consumer)
step("running the consumer" ${WORK}/consumer/consumer ${WORK}/consumer/libconsumer_plugin.so)
if(NOT step_output MATCHES "consumer: PASS")
  message(FATAL_ERROR "the consumer did not pass:\n${step_output}")
endif()

set(ENV{PKG_CONFIG_PATH} ${prefix}/lib/pkgconfig)
step("pkg-config" pkg-config --cflags --libs tmr)
string(STRIP "${step_output}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
step("building with pkg-config flags" c++ ${SOURCE}/pkgconfig_main.cpp ${flags} -o
     ${WORK}/pkgconfig_consumer)
step("running the pkg-config consumer" ${WORK}/pkgconfig_consumer)

step("the installed tmr command" ${prefix}/bin/tmr run vector_example --clusters 2)
if(NOT step_output MATCHES "result: PASS")
  message(FATAL_ERROR "the installed tmr command did not pass:\n${step_output}")
endif()

file(COPY ${USER_KERNELS}/ DESTINATION ${WORK}/user_kernels)
set(ENV{PYTHONPATH} ${prefix}/lib/python3/dist-packages)
step("python3 -m tmr run with the installed package" ${PYTHON} -m tmr run -k ${WORK}/user_kernels
     -g ${WORK}/user_kernels/golden.py --clusters 2)
if(NOT step_output MATCHES "building libtmr_user_plugin.so.*1/1 cases passed")
  message(FATAL_ERROR "the installed runner did not pass:\n${step_output}")
endif()
message(STATUS "installed package: CMake, pkg-config, tmr command and Python runner all pass")
