#!/usr/bin/env bash
# npm run setup:training: the offline pipeline's Python packages, from
# Debian (no PyPI on these machines). The training suite in `npm test`
# (test/node/training-python.test.ts) runs once these import; without them it
# is skipped with a line saying so, except under CI, where it must run.
set -euo pipefail
packages=(python3-numpy python3-scipy python3-sklearn python3-xgboost python3-onnx python3-matplotlib)
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
    echo "setup:training needs root (or sudo) to run apt-get install ${packages[*]}" >&2
    exit 1
  fi
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${packages[@]}"
/usr/bin/python3 -c 'import numpy, scipy, sklearn, xgboost, onnx, matplotlib; print("training packages ready")'
