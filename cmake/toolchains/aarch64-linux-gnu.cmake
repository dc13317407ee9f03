# Cross build for aarch64 (arm64, AWS Graviton) on an x86_64 Debian machine, used by the
# preset static-arm64 (docs/static-build.md, "arm64"):
#   - compilers from crossbuild-essential-arm64 (aarch64-linux-gnu-gcc/g++ 12, the same
#     GCC as the native build, so the same warnings hold);
#   - the target's libraries are Debian's :arm64 -dev packages, installed side by side
#     with the machine's (multiarch): CMAKE_LIBRARY_ARCHITECTURE makes find_library look
#     in /usr/lib/aarch64-linux-gnu and never in /usr/lib/x86_64-linux-gnu; libcurl,
#     libsystemd and OpenSSL come from KB_STATIC_PREFIX (scripts/build-static-deps.sh
#     --arch arm64);
#   - header-only libraries (nlohmann_json, CLI11, Catch2, spdlog, fmt's headers) are the
#     machine's: they are architecture-independent;
#   - qemu-aarch64-static runs what was built: CTest's tests (CMAKE_CROSSCOMPILING_EMULATOR)
#     and catch_discover_tests' listing at build time. A static aarch64 binary that a test
#     starts by path (the binary under test, KB_BINARY) runs through binfmt_misc, which
#     scripts/test-arm64.sh registers.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# The machine's pkg-config, reading only the target's .pc files.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/qemu-aarch64-static)
