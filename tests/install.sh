#!/usr/bin/env bash
# install.sh -- `cmake --install` into a temporary prefix, then build the
# example application (examples/hello.c: compiles a spec given as a string,
# runs it, compares with the reference) out of tree against the installed
# attnc: with find_package (shared and static library) and with pkg-config.
# Each build must run and match the reference. Also checks the installed
# files and runs the installed CLI on an installed spec.
#   bash tests/install.sh path/to/build/attnc      (cwd: the source root)
set -u
ATTNC=${1:?usage: install.sh path/to/build/attnc}
BUILD=$(dirname "$ATTNC")
SRC=$PWD
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
P=$T/prefix
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# a sanitizer build: consumers link the sanitizer runtimes too
extra=""
grep -q "^ATTNC_SANITIZE:BOOL=ON" "$BUILD/CMakeCache.txt" 2>/dev/null && extra="-fsanitize=address,undefined"

cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1 || {
  cat "$T/install.log"; echo "FAIL: cmake --install"; exit 1; }
LIBDIR=$(dirname "$(find "$P" -name attnc.pc | head -1)")/..
for f in bin/attnc include/attnc.h share/attnc/specs/causal.lua share/attnc/specs/neighborhood2d.lua; do
  [ -e "$P/$f" ] || fail "not installed: $f"
done
for f in libattnc.so libattnc.a pkgconfig/attnc.pc cmake/attnc/attncConfig.cmake \
         cmake/attnc/attncConfigVersion.cmake cmake/attnc/attncTargets.cmake; do
  [ -e "$LIBDIR/$f" ] || fail "not installed: lib/$f"
done

# the installed CLI on an installed spec
"$P/bin/attnc" verify "$P/share/attnc/specs/causal.lua" --target ref --shape 1,2,40,16 >"$T/out" 2>&1 ||
  { cat "$T/out"; fail "the installed attnc verify"; }

# run NAME EXE: the example must exit 0 and say ok
run() {
  if "$2" 100 >"$T/$1.out" 2>&1 && grep -q ": ok" "$T/$1.out"; then
    echo "ok: $1"; grep -v '^attnc ' "$T/$1.out" | sed 's/^/    /'
  else
    sed 's/^/    /' "$T/$1.out"; fail "$1 did not match the reference"
  fi
}

# 1. CMake: find_package(attnc) -> attnc::attnc and attnc::attnc_static
if cmake -S "$SRC/examples" -B "$T/cm" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_FLAGS="$extra" \
     >"$T/cm.log" 2>&1 && cmake --build "$T/cm" >>"$T/cm.log" 2>&1; then
  run "find_package shared" "$T/cm/hello"
  run "find_package static" "$T/cm/hello_static"
  ldd "$T/cm/hello_static" | grep -q libattnc && fail "hello_static links libattnc.so"
else
  cat "$T/cm.log"; fail "building against find_package(attnc)"
fi

# 2. pkg-config (shared)
if command -v pkg-config >/dev/null; then
  export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
  pkg-config --exists attnc || fail "pkg-config does not find attnc"
  [ "$(pkg-config --modversion attnc)" = "$("$ATTNC" --version | head -1 | cut -d' ' -f2)" ] ||
    fail "attnc.pc version differs from attnc --version"
  if make -s -C "$SRC/examples" OUT="$T" CFLAGS="-O2 -Wall $extra" >"$T/pc.log" 2>&1; then
    run "pkg-config" "$T/hello"
  else
    cat "$T/pc.log"; fail "building with pkg-config"
  fi
else
  echo "SKIP: pkg-config not found (install pkg-config)"
fi

[ $fails -eq 0 ] && echo "install: ok"
[ $fails -eq 0 ]
