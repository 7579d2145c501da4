# Adds every immediate child folder of the current source dir that has a CMakeLists.txt.
# Parts are added by creating their folder; no list elsewhere needs editing.
#
# -DKEEL_ONLY="marketplace/minisign;tests/marketplace" configures only those parts (and the
# folders on the way to them), so one part can be built while another is being rewritten.
function(keel_part_selected rel out)
  set(${out} TRUE PARENT_SCOPE)
  if(NOT KEEL_ONLY)
    return()
  endif()
  foreach(only IN LISTS KEEL_ONLY)
    string(FIND "${only}/" "${rel}/" a)
    string(FIND "${rel}/" "${only}/" b)
    if(a EQUAL 0 OR b EQUAL 0)
      return()
    endif()
  endforeach()
  set(${out} FALSE PARENT_SCOPE)
endfunction()

function(keel_add_child_dirs)
  file(GLOB children RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} LIST_DIRECTORIES true ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT children)
  foreach(child IN LISTS children)
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${child} AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${child}/CMakeLists.txt)
      file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/${child})
      keel_part_selected("${rel}" selected)
      if(selected)
        add_subdirectory(${child})
      endif()
    endif()
  endforeach()
endfunction()
