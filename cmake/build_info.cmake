# Writes build_info_gen.h with the version, git commit and build date. The file is rewritten
# only when the commit (or dirtiness) changes, so an unchanged tree does not relink.
execute_process(COMMAND git -C ${SOURCE_DIR} rev-parse HEAD
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE rc ERROR_QUIET)
if(NOT rc EQUAL 0 OR commit STREQUAL "")
  set(commit "unknown")
else()
  execute_process(COMMAND git -C ${SOURCE_DIR} status --porcelain --untracked-files=no
                  OUTPUT_VARIABLE dirty OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT dirty STREQUAL "")
    set(commit "${commit}-dirty")
  endif()
endif()
set(key "${VERSION} ${commit}")
if(EXISTS ${OUT})
  file(STRINGS ${OUT} first LIMIT_COUNT 1)
  if(first STREQUAL "// ${key}")
    return()
  endif()
endif()
string(TIMESTAMP date "%Y-%m-%dT%H:%M:%SZ" UTC)
file(WRITE ${OUT}.tmp "// ${key}
#pragma once
#define KILN_VERSION \"${VERSION}\"
#define KILN_GIT_COMMIT \"${commit}\"
#define KILN_BUILD_DATE \"${date}\"
#define KILN_YAML_CPP_VERSION \"${YAML_CPP_VERSION}\"
")
file(RENAME ${OUT}.tmp ${OUT})
