# An installed SISCI (the vendor's, or the software fabric's installed alone): headers in
# ROOT/include (the vendor also uses ROOT/include/dis), the library in ROOT/lib64 or ROOT/lib.
# Defines the imported target `sisci`, used wherever the software fabric's would be.
find_path(DIS_SISCI_INCLUDE_DIR sisci_api.h
  PATHS ${DIS_SISCI_ROOT}/include ${DIS_SISCI_ROOT}/include/dis
  NO_DEFAULT_PATH)
find_library(DIS_SISCI_LIBRARY sisci
  PATHS ${DIS_SISCI_ROOT}/lib64 ${DIS_SISCI_ROOT}/lib ${DIS_SISCI_ROOT}/lib/x86_64-linux-gnu
  NO_DEFAULT_PATH)
if(NOT DIS_SISCI_INCLUDE_DIR OR NOT DIS_SISCI_LIBRARY)
  message(FATAL_ERROR "DIS_SISCI_ROOT=${DIS_SISCI_ROOT}: no include/sisci_api.h and "
                      "lib*/libsisci.so there")
endif()
set(_sisci_includes ${DIS_SISCI_INCLUDE_DIR})
if(EXISTS ${DIS_SISCI_ROOT}/include/dis AND NOT DIS_SISCI_INCLUDE_DIR STREQUAL ${DIS_SISCI_ROOT}/include/dis)
  list(APPEND _sisci_includes ${DIS_SISCI_ROOT}/include/dis)
endif()
add_library(sisci SHARED IMPORTED GLOBAL)
set_target_properties(sisci PROPERTIES
  IMPORTED_LOCATION ${DIS_SISCI_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES "${_sisci_includes}")
message(STATUS "SISCI: ${DIS_SISCI_LIBRARY} (headers ${_sisci_includes})")
