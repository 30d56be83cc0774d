# `cmake --install`: the library, its public headers, a CMake package (find_package(sorix) gives
# sorix::sorix with its dependencies found) and a pkg-config file.
include(CMakePackageConfigHelpers)

set(SORIX_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sorix)

install(TARGETS sorix EXPORT sorixTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(dir ${SORIX_PUBLIC_INCLUDE_DIRS})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endforeach()
install(EXPORT sorixTargets NAMESPACE sorix:: DESTINATION ${SORIX_CMAKE_DIR})

# A static sorix carries its private dependencies into the consumer's link.
if(SORIX_LIBRARY_TYPE STREQUAL "STATIC")
  set(SORIX_STATIC ON)
else()
  set(SORIX_STATIC OFF)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/sorixConfig.cmake.in
  ${PROJECT_BINARY_DIR}/sorixConfig.cmake INSTALL_DESTINATION ${SORIX_CMAKE_DIR})
# 0.x: a minor version may change the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sorixConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sorixConfig.cmake ${PROJECT_BINARY_DIR}/sorixConfigVersion.cmake
  DESTINATION ${SORIX_CMAKE_DIR})

if(SORIX_STATIC)
  set(SORIX_PC_PRIVATE_LIBS "-lopenblas -lz -lgloo")
else()
  set(SORIX_PC_PRIVATE_LIBS "")
endif()
# The prefix as seen from the .pc file's folder ("../.." for lib/pkgconfig), so that the file works
# under whatever prefix the package is installed.
file(RELATIVE_PATH SORIX_PC_PREFIX_FROM_PCDIR "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" SORIX_PC_PREFIX_FROM_PCDIR "${SORIX_PC_PREFIX_FROM_PCDIR}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/sorix.pc.in ${PROJECT_BINARY_DIR}/sorix.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/sorix.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
