# Third-party libraries for the fully static release binary (KB_STATIC=ON, preset
# `static`). Included by the top-level CMakeLists.txt instead of the find_package() calls
# of the dynamic build; defines the same INTERFACE target, kb_third_party.
#
# Every library is linked by explicit .a path (docs/static-build.md "Linking by path"):
#   - libcurl, libsystemd and OpenSSL come from ${KB_STATIC_PREFIX}, built by
#     scripts/build-static-deps.sh from Debian's own source packages (Debian's libcurl.a
#     needs Kerberos/LDAP, which ship no .a; Debian ships no libsystemd.a at all; Debian's
#     libcrypto.a has every algorithm and engine, 1.3 MB more binary: docs/static-build.md);
#   - c-ares, zlib, libarchive (+ libacl), libcap and yaml-cpp are Debian's .a
#     files. curl's libcurl.pc and yaml-cpp's CMake config point at shared objects, so
#     neither is used.
#
# libarchive: Debian's libarchive.a is linked with just -lacl -lz. That holds only while
# the code uses explicit read support (archive_read_support_filter_gzip +
# archive_read_support_format_tar), archive_write_disk, and for collect-logs the explicit
# writer archive_write_add_filter_gzip + archive_write_set_format_pax_restricted. The
# *_all readers pull in libxml2, ICU, lzma, zstd, bz2, lz4, nettle, ... and the link fails
# (or grows by ~31 MB); archive_write_set_format.o drags in every format writer too, which
# stays harmless only because --gc-sections (CMakeLists.txt) drops the unused ones.

# Release = -O2, not CMake's -O3: GCC 12 at -O3 reports false -Wrestrict /
# -Wstringop-overflow errors inside libstdc++'s std::string operator+ (GCC bug 105329),
# which KB_WERROR (on in the static preset) turns into a failed build; -O2 is also what
# the dev/ci presets compile and test. Directory-scope variables, so they apply to every
# target of this build.
set(CMAKE_C_FLAGS_RELEASE "-O2 -DNDEBUG")
set(CMAKE_CXX_FLAGS_RELEASE "-O2 -DNDEBUG")

set(KB_STATIC_PREFIX "${PROJECT_SOURCE_DIR}/build/static-deps/prefix" CACHE PATH
    "Prefix holding libcurl.a, libsystemd.a, libssl.a and libcrypto.a from scripts/build-static-deps.sh")

if(NOT EXISTS "${KB_STATIC_PREFIX}/lib/libcurl.a" OR NOT EXISTS "${KB_STATIC_PREFIX}/lib/libsystemd.a"
   OR NOT EXISTS "${KB_STATIC_PREFIX}/lib/libcrypto.a")
  message(FATAL_ERROR
    "KB_STATIC=ON needs libcurl.a, libsystemd.a and libcrypto.a under KB_STATIC_PREFIX=${KB_STATIC_PREFIX}.\n"
    "Run scripts/build-static-deps.sh first (it builds them from Debian's source packages).")
endif()

# find_library() with an explicit "lib<name>.a" name only ever matches the archive.
function(kb_static_archive out_var name)
  find_library(${out_var} NAMES "lib${name}.a" ${ARGN} NO_CACHE)
  if(NOT ${out_var})
    message(FATAL_ERROR "KB_STATIC=ON: lib${name}.a not found (install its Debian -dev package; "
                        "scripts/build-static-deps.sh installs all of them)")
  endif()
  message(STATUS "static: ${name} -> ${${out_var}}")
  set(${out_var} "${${out_var}}" PARENT_SCOPE)
endfunction()

kb_static_archive(KB_A_CURL curl PATHS "${KB_STATIC_PREFIX}/lib" NO_DEFAULT_PATH)
kb_static_archive(KB_A_SYSTEMD systemd PATHS "${KB_STATIC_PREFIX}/lib" NO_DEFAULT_PATH)
kb_static_archive(KB_A_SSL ssl PATHS "${KB_STATIC_PREFIX}/lib" NO_DEFAULT_PATH)
kb_static_archive(KB_A_CRYPTO crypto PATHS "${KB_STATIC_PREFIX}/lib" NO_DEFAULT_PATH)
kb_static_archive(KB_A_CARES cares)
kb_static_archive(KB_A_Z z)
kb_static_archive(KB_A_ARCHIVE archive)
kb_static_archive(KB_A_ACL acl)
kb_static_archive(KB_A_CAP cap)
# yaml-cpp: the prefix's copy first (a cross build unpacks the target's there:
# scripts/build-static-deps.sh, step 6), else Debian's.
kb_static_archive(KB_A_YAMLCPP yaml-cpp HINTS "${KB_STATIC_PREFIX}/lib")

add_library(kb_third_party INTERFACE)

# The locally built curl/systemd/OpenSSL headers must win over the -dev headers in
# /usr/include (libcurl4-openssl-dev, libsystemd-dev and libssl-dev are installed for the
# dev build). -isystem directories are searched after -I and before the standard system
# directories, so SYSTEM keeps them ahead of /usr/include, and keeps our warnings
# (-Wold-style-cast) off their macros, as for any system header.
target_include_directories(kb_third_party SYSTEM BEFORE INTERFACE "${KB_STATIC_PREFIX}/include")
target_compile_definitions(kb_third_party INTERFACE CURL_STATICLIB)

# Order matters for a static link: users before what they use.
#   curl -> ssl -> crypto, curl -> cares, curl -> z
#   archive -> acl, z (and crypto only through readers/writers we do not use)
#   systemd -> cap, rt, pthread
target_link_libraries(kb_third_party INTERFACE
  "${KB_A_CURL}"
  "${KB_A_SSL}"
  "${KB_A_CARES}"
  "${KB_A_ARCHIVE}"
  "${KB_A_ACL}"
  "${KB_A_YAMLCPP}"
  "${KB_A_SYSTEMD}"
  "${KB_A_CAP}"
  "${KB_A_CRYPTO}"
  "${KB_A_Z}"
  Threads::Threads
  ${CMAKE_DL_LIBS}
  rt)
