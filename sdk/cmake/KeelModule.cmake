# keel_add_module(<target> MANIFEST <module.json>)
#
# Turns a MODULE library target into a keel module: one exported symbol (keel_module_entry),
# everything else hidden, no undefined symbols (a module links nothing of the kernel; the
# host's services arrive as a function table), and the file name module.json names.
# In keel's own tree the module is also packed, signed and installed into the build-tree
# KEEL_HOME (see cmake/KeelPackaging.cmake); out of tree, use keel-pack.
function(keel_add_module target)
  cmake_parse_arguments(M "" "MANIFEST" "" ${ARGN})
  if(NOT M_MANIFEST)
    message(FATAL_ERROR "keel_add_module(${target}): MANIFEST <module.json> is required")
  endif()
  file(READ ${M_MANIFEST} manifest_text)
  string(JSON library GET "${manifest_text}" library)
  string(REGEX REPLACE "^lib(.*)\\.so$" "\\1" output_name "${library}")
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME "${output_name}"
    SUFFIX ".so"
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    KEEL_MANIFEST "${M_MANIFEST}")
  # Export keel_module_entry and nothing else (not even weak template instantiations).
  set(version_script ${CMAKE_CURRENT_BINARY_DIR}/${target}.exports.map)
  file(WRITE ${version_script} "{ global: keel_module_entry; local: *; };\n")
  target_link_options(${target} PRIVATE "LINKER:--no-undefined" "LINKER:--exclude-libs,ALL"
    "LINKER:--version-script=${version_script}")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${version_script})
  if(TARGET Keel::sdk)
    target_link_libraries(${target} PRIVATE Keel::sdk)
  endif()
  set_property(GLOBAL APPEND PROPERTY KEEL_MODULE_TARGETS ${target})
endfunction()
