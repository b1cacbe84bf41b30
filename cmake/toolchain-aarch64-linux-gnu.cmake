# Cross-compiling for 64-bit Arm (aarch64) with Debian's multiarch toolchain
# (crossbuild-essential-arm64) and the :arm64 -dev packages, as
# scripts/cross-arm64.sh installs them. Tests run under qemu-user.
#
#   cmake -S . -B build/arm64 --toolchain cmake/toolchain-aarch64-linux-gnu.cmake
#
# Why each part:
# - The compiler and its binutils (ld -r, objcopy, ar for libpa_activate.a)
#   come from the aarch64-linux-gnu- prefix; CMake derives the binutils from
#   the compiler's name.
# - Libraries come from /usr/lib/aarch64-linux-gnu, the arm64 side of
#   multiarch: pkg-config reads only the arm64 .pc files (PKG_CONFIG_LIBDIR
#   replaces the default search, so no host .pc can be picked by mistake).
# - Programs found at configure time (protoc-c) are the host's: code
#   generation runs on the build machine, never under the emulator.
# - ctest prefixes every test program with qemu-aarch64, which runs it with
#   the multiarch arm64 loader (/lib/ld-linux-aarch64.so.1, libc6:arm64) and
#   the :arm64 libraries. Not with -L /usr/aarch64-linux-gnu: the cross
#   toolchain's own libc under that prefix hangs in the first
#   pthread_create under Debian 12's qemu 7.2, and it would mix two builds
#   of glibc in one process.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(PA_CROSS_TRIPLET aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${PA_CROSS_TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${PA_CROSS_TRIPLET})

set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${PA_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Libraries and headers: the cross root and the multiarch tree only; programs:
# the host's.
set(CMAKE_FIND_ROOT_PATH /usr/${PA_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

find_program(PA_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${PA_QEMU_AARCH64})
