#!/bin/sh
# Installs the build into a temporary prefix, then builds the README's example against it twice:
# with pkg-config, and as a CMake project with find_package(weft). Both must run and print
# "hello" then "world".
# usage: check_install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
pc=$(find "$tmp/prefix" -name weft.pc)
libdir=$(dirname "$(dirname "$pc")")
expected=$(printf 'hello\nworld')

PKG_CONFIG_PATH=$(dirname "$pc") cc -o "$tmp/hello_pc" "$src/examples/hello.c" \
    $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs weft)
out=$(LD_LIBRARY_PATH=$libdir "$tmp/hello_pc")
[ "$out" = "$expected" ] || { echo "pkg-config build printed: $out"; exit 1; }

mkdir "$tmp/app"
cp "$src/examples/hello.c" "$tmp/app/"
cat >"$tmp/app/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(app C)
find_package(weft REQUIRED)
add_executable(hello hello.c)
target_link_libraries(hello weft::weft)
CM
cmake -S "$tmp/app" -B "$tmp/app/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/app/build" >/dev/null
out=$(LD_LIBRARY_PATH=$libdir "$tmp/app/build/hello")
[ "$out" = "$expected" ] || { echo "CMake build printed: $out"; exit 1; }
echo "installed library, headers, weft.pc and CMake package work"
