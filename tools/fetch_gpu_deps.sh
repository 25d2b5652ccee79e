#!/bin/bash
# fetch_gpu_deps.sh -- run HERE (Debian, with network to Debian's mirror):
# download the Debian packages the GPU machine lacks (Lua 5.4, Check, cJSON) into
# .deps/ (git-ignored), to be carried to the GPU machine and unpacked there
# by tools/gpu_build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps
cd .deps
if ls liblua5.4-dev_*.deb check_*.deb libcjson-dev_*.deb >/dev/null 2>&1; then
  echo "fetch_gpu_deps: .deps/ already holds the packages"; exit 0
fi
PKGS=(liblua5.4-0 liblua5.4-dev check libsubunit0 libsubunit-dev libcjson1 libcjson-dev)
apt-get download "${PKGS[@]}" 2>/dev/null || { apt-get update -qq && apt-get download "${PKGS[@]}"; }
ls -la
