#!/bin/bash
# test.sh -- set up, build, and run the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export CK_DEFAULT_TIMEOUT=300
ctest --test-dir "${ATTNC_BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" "$@"
