#!/bin/bash
# test.sh -- set up, build, and run the whole test suite (what CI runs):
#  1. the full build (every backend this machine can build) and all tests;
#  2. the core (frontend, IR, passes, reference, CLI) again under
#     AddressSanitizer + UBSan, with leak checking.
# ATTNC_TEST_NO_ASAN=1 skips the second part.
set -euo pipefail
cd "$(dirname "$0")/.."
export CK_DEFAULT_TIMEOUT=300
bash tools/setup.sh
echo "== test suite (build/)"
ctest --test-dir "${ATTNC_BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" "$@"
if [ "${ATTNC_TEST_NO_ASAN:-0}" != 1 ]; then
  echo "== core suites under AddressSanitizer + UBSan (build-asan/)"
  ATTNC_BUILD_DIR=build-asan ATTNC_SANITIZE=1 \
    ATTNC_CMAKE_OPTS="-DATTNC_WITH_LLVM=OFF -DATTNC_WITH_CUDA=OFF" bash tools/setup.sh
  ctest --test-dir build-asan --output-on-failure -j"$(nproc)" "$@"
fi
