# First-party modules take the same road as third-party ones: the build makes a build-local
# signing key (never committed), packs and signs every module into a build-tree marketplace,
# and installs the packages into a build-tree KEEL_HOME that trusts that key. keel run from
# the build tree (KEEL_HOME=build/keel-home) loads them from there, verified like any other.
set(KEEL_SIGNING_DIR ${CMAKE_BINARY_DIR}/signing)
set(KEEL_BUILD_MARKETPLACE ${CMAKE_BINARY_DIR}/marketplace)
set(KEEL_BUILD_HOME ${CMAKE_BINARY_DIR}/keel-home)

add_custom_command(
  OUTPUT ${KEEL_SIGNING_DIR}/build.key ${KEEL_SIGNING_DIR}/build.pub
  COMMAND ${CMAKE_COMMAND} -E make_directory ${KEEL_SIGNING_DIR}
  COMMAND $<TARGET_FILE:keel-pack> keygen -p ${KEEL_SIGNING_DIR}/build.pub -s ${KEEL_SIGNING_DIR}/build.key --force
  DEPENDS keel-pack
  COMMENT "Generating the build-local module signing key")

add_custom_command(
  OUTPUT ${KEEL_BUILD_HOME}/trusted_keys/build.pub
  COMMAND ${CMAKE_COMMAND} -E make_directory ${KEEL_BUILD_HOME}/trusted_keys
  COMMAND ${CMAKE_COMMAND} -E copy ${KEEL_SIGNING_DIR}/build.pub ${KEEL_BUILD_HOME}/trusted_keys/build.pub
  DEPENDS ${KEEL_SIGNING_DIR}/build.pub)

get_property(module_targets GLOBAL PROPERTY KEEL_MODULE_TARGETS)
set(installed_stamps ${KEEL_BUILD_HOME}/trusted_keys/build.pub)
foreach(target IN LISTS module_targets)
  get_target_property(manifest ${target} KEEL_MANIFEST)
  file(READ ${manifest} manifest_text)
  string(JSON name GET "${manifest_text}" name)
  string(JSON version GET "${manifest_text}" version)
  set(pkg ${KEEL_BUILD_MARKETPLACE}/${name}-${version}.keelpkg)
  set(stamp ${KEEL_BUILD_HOME}/modules/${name}/${version}/module.json)
  # Packages carry the stripped library, as distributions ship them: a tenth of the size,
  # so verification (hashing every byte) and mapping stay fast. Debug info stays in the build.
  set(stripped ${CMAKE_BINARY_DIR}/stripped/${name}/$<TARGET_FILE_NAME:${target}>)
  add_custom_command(
    OUTPUT ${pkg} ${pkg}.minisig
    COMMAND ${CMAKE_COMMAND} -E make_directory ${KEEL_BUILD_MARKETPLACE} ${CMAKE_BINARY_DIR}/stripped/${name}
    COMMAND ${CMAKE_STRIP} --strip-unneeded -o ${stripped} $<TARGET_FILE:${target}>
    COMMAND $<TARGET_FILE:keel-pack> pack --manifest ${manifest} --lib ${stripped}
            --key ${KEEL_SIGNING_DIR}/build.key -o ${pkg}
    DEPENDS ${target} ${manifest} ${KEEL_SIGNING_DIR}/build.key keel-pack
    COMMENT "Packing and signing ${name} ${version}")
  add_custom_command(
    OUTPUT ${stamp}
    COMMAND $<TARGET_FILE:keel-pack> install --home ${KEEL_BUILD_HOME} ${pkg}
    DEPENDS ${pkg} ${pkg}.minisig ${KEEL_BUILD_HOME}/trusted_keys/build.pub keel-pack
    COMMENT "Installing ${name} ${version} into the build-tree KEEL_HOME")
  list(APPEND installed_stamps ${stamp})
endforeach()
add_custom_target(keel-home ALL DEPENDS ${installed_stamps})
