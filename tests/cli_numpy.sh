#!/usr/bin/env bash
# cli_numpy.sh -- `attnc run --target ref` against an independent NumPy
# computation (tests/ref_numpy.py) for the specs of the pattern library.
# Skips (exit 0) when no python3 with numpy is found.
#   bash tests/cli_numpy.sh path/to/attnc      (cwd: the source root)
set -u
ATTNC=${1:?usage: cli_numpy.sh path/to/attnc}
for py in /usr/bin/python3 python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import numpy' >/dev/null 2>&1; then
    exec "$py" "$(dirname "$0")/ref_numpy.py" "$ATTNC"
  fi
done
echo "SKIP: numpy not found (install python3-numpy)"
exit 0
