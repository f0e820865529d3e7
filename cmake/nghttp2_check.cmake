# Refuse to build against an nghttp2 without the fixes for two remote
# denial-of-service flaws:
#   CVE-2023-44487 (rapid reset)         upstream 1.57.0, Debian 1.52.0-1+deb12u1
#   CVE-2024-28182 (CONTINUATION flood)  upstream 1.61.0, Debian 1.52.0-1+deb12u2
# Debian backports them without changing the version string (pkg-config
# says 1.52.0 either way), so the version cannot tell. Two checks:
#   1. The API each fix added must be declared and exported:
#      nghttp2_option_set_stream_reset_rate_limit and
#      nghttp2_option_set_max_continuations.
#   2. On a dpkg system, the package that owns the library must be at
#      least TW_NGHTTP2_MIN_DEB_VERSION (1.52.0-1+deb12u3 also fixes
#      CVE-2026-27135, an assertion failure a peer can trigger).
# Each daemon also probes the behaviour at start-up (lib/net/tw_nghttp2_check.c).
# Expects pkg_check_modules(NGHTTP2 ...) to have run.

include(CheckSymbolExists)

set(TW_NGHTTP2_MIN_DEB_VERSION "1.52.0-1+deb12u3" CACHE STRING
  "Oldest Debian libnghttp2-14 package accepted (dpkg version)")

set(tw_fix_hint "install libnghttp2 1.61 or later, or on Debian 12 libnghttp2-14 and \
libnghttp2-dev ${TW_NGHTTP2_MIN_DEB_VERSION} or later (apt-get update && apt-get install \
libnghttp2-14 libnghttp2-dev), then delete CMakeCache.txt and configure again")

set(CMAKE_REQUIRED_QUIET ON)
set(CMAKE_REQUIRED_INCLUDES ${NGHTTP2_INCLUDE_DIRS})
set(CMAKE_REQUIRED_LIBRARIES ${NGHTTP2_LINK_LIBRARIES})
check_symbol_exists(nghttp2_option_set_stream_reset_rate_limit nghttp2/nghttp2.h
  TW_NGHTTP2_HAS_RESET_RATE_LIMIT)
check_symbol_exists(nghttp2_option_set_max_continuations nghttp2/nghttp2.h
  TW_NGHTTP2_HAS_MAX_CONTINUATIONS)
unset(CMAKE_REQUIRED_QUIET)
unset(CMAKE_REQUIRED_INCLUDES)
unset(CMAKE_REQUIRED_LIBRARIES)

if(NOT TW_NGHTTP2_HAS_RESET_RATE_LIMIT)
  message(FATAL_ERROR "libnghttp2 ${NGHTTP2_VERSION} lacks the HTTP/2 rapid-reset fix "
    "(CVE-2023-44487: no nghttp2_option_set_stream_reset_rate_limit): ${tw_fix_hint}")
endif()
if(NOT TW_NGHTTP2_HAS_MAX_CONTINUATIONS)
  message(FATAL_ERROR "libnghttp2 ${NGHTTP2_VERSION} lacks the CONTINUATION-flood fix "
    "(CVE-2024-28182: no nghttp2_option_set_max_continuations): ${tw_fix_hint}")
endif()

# Which package owns the library we link, and is it new enough?
find_program(TW_DPKG_QUERY dpkg-query)
find_program(TW_DPKG dpkg)
if(TW_DPKG_QUERY AND TW_DPKG)
  find_library(tw_nghttp2_so NAMES nghttp2 HINTS ${NGHTTP2_LIBRARY_DIRS})
  if(tw_nghttp2_so)
    get_filename_component(tw_nghttp2_real "${tw_nghttp2_so}" REALPATH)
    execute_process(COMMAND ${TW_DPKG_QUERY} -S "${tw_nghttp2_real}"
      OUTPUT_VARIABLE tw_owner RESULT_VARIABLE tw_rc ERROR_QUIET
      OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(tw_rc EQUAL 0 AND tw_owner MATCHES "^([^:, ]+(:[a-z0-9_-]+)?): ")
      set(tw_pkg "${CMAKE_MATCH_1}")
      execute_process(COMMAND ${TW_DPKG_QUERY} -W "-f=\${Version}" "${tw_pkg}"
        OUTPUT_VARIABLE tw_pkg_version RESULT_VARIABLE tw_rc ERROR_QUIET
        OUTPUT_STRIP_TRAILING_WHITESPACE)
      if(tw_rc EQUAL 0 AND tw_pkg_version)
        execute_process(COMMAND ${TW_DPKG} --compare-versions "${tw_pkg_version}" ge
          "${TW_NGHTTP2_MIN_DEB_VERSION}" RESULT_VARIABLE tw_new_enough)
        if(NOT tw_new_enough EQUAL 0)
          message(FATAL_ERROR "${tw_nghttp2_real} comes from ${tw_pkg} ${tw_pkg_version}, "
            "older than ${TW_NGHTTP2_MIN_DEB_VERSION} (HTTP/2 denial-of-service fixes "
            "CVE-2023-44487, CVE-2024-28182, CVE-2026-27135): ${tw_fix_hint}")
        endif()
        message(STATUS "libnghttp2: ${tw_pkg} ${tw_pkg_version} (rapid-reset and "
          "CONTINUATION-flood fixes present)")
      endif()
    endif()
  endif()
  unset(tw_nghttp2_so CACHE)
endif()
