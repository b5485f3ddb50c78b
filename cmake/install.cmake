# `cmake --install <build> --prefix <dir>`: headers, libtmr, the trace exporters, the `tmr`
# command, the CMake package (find_package(tmr) -> tmr::tmr, tmr::profile), a pkg-config file and
# the Python package. Every path inside is relative to the prefix, so any prefix works.
include(CMakePackageConfigHelpers)

set(TMR_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tmr)

# Installed binaries find libtmr next to them, wherever the prefix is.
file(RELATIVE_PATH tmr_bin_to_lib /p/${CMAKE_INSTALL_BINDIR} /p/${CMAKE_INSTALL_LIBDIR})
if(TARGET tmr_cli)
  set_target_properties(tmr_cli PROPERTIES INSTALL_RPATH "$ORIGIN/${tmr_bin_to_lib}")
  install(TARGETS tmr_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

set_target_properties(tmr_profile PROPERTIES EXPORT_NAME profile)
install(TARGETS tmr tmr_profile EXPORT tmrTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/tmr DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT tmrTargets NAMESPACE tmr:: DESTINATION ${TMR_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/tmrConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/tmrConfig.cmake INSTALL_DESTINATION ${TMR_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tmrConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tmrConfig.cmake ${PROJECT_BINARY_DIR}/tmrConfigVersion.cmake
        DESTINATION ${TMR_CMAKE_DIR})

file(RELATIVE_PATH TMR_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
string(REGEX REPLACE "/$" "" TMR_PC_TO_PREFIX "${TMR_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/tmr.pc.in ${PROJECT_BINARY_DIR}/tmr.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/tmr.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
