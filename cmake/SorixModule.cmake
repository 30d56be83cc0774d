# One library module (parallel, core, autograd, nn): an OBJECT library compiled from
# <module>/src, whose only include folders are its own public `include`, its own private `src`
# and what the modules it builds on export (their public headers, and for the op layers their
# `internal` folders, BUILD_INTERFACE only). An #include of a higher module, or of another module's
# src/, does not compile: the layering is enforced by the build. The objects of the four modules
# are combined into the one library sorix::sorix (top-level CMakeLists.txt).
# A module above that calls into one below's internals lists sorix_<below>_internal in DEPENDS.
#
# sorix_module(<name> SOURCES <files...> [DEPENDS <targets...>] [PRIVATE_LIBS <targets...>])
function(sorix_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS;PRIVATE_LIBS" ${ARGN})
  set(target sorix_${name})
  add_library(${target} OBJECT ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_include_directories(${target}
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${target} PUBLIC ${ARG_DEPENDS} PRIVATE ${ARG_PRIVATE_LIBS})
  sorix_warnings(${target})
  # sqrt and friends never need to set errno here; without this flag GCC will not vectorise loops
  # that call std::sqrt (it must keep the scalar call for the errno path). Results are unchanged.
  # -ffp-contract=off: a * b + c is never fused behind our back (it would be in the AVX2 and AVX-512
  # units and not in the baseline ones); every fma the kernels want is written out.
  target_compile_options(${target} PRIVATE -fno-math-errno -ffp-contract=off)
  if(SORIX_NATIVE)
    target_compile_options(${target} PRIVATE -march=native)
  endif()
  # A module's internal headers, for the modules above it (never installed, never exported).
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/internal)
    add_library(${target}_internal INTERFACE)
    target_include_directories(${target}_internal INTERFACE $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/internal>)
    target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/internal)
  endif()
  set_property(GLOBAL APPEND PROPERTY SORIX_MODULES ${target})
endfunction()
