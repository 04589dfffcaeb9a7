#!/usr/bin/env bash
# Set up CareLLM in ./.venv on a fresh Linux machine (Python >= 3.10).
#   bash scripts/setup.sh          the library, CLI and demo
#   bash scripts/setup.sh --test   plus test tools: pytest, ruff, Playwright and
#                                  Debian's chromium for the browser tests (with
#                                  fonts-noto-cjk so Chinese renders)
# torch and torchvision are installed as a pinned pair in the same pip command, so pip
# never picks an arbitrary build. Override with CARELLM_TORCH, e.g. for a CPU-only
# machine: CARELLM_TORCH="torch==2.9.1 torchvision==0.24.1 --extra-index-url https://download.pytorch.org/whl/cpu"
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

system_packages="ffmpeg"
[ $want_test = 1 ] && system_packages="$system_packages chromium fonts-noto-cjk"
missing=""
for pkg in $system_packages; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing system packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "please install these system packages first:$missing (e.g. sudo apt-get install$missing)" >&2
    [ $want_test = 1 ] && exit 1
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
torch_pair=${CARELLM_TORCH:-"torch==2.14.1 torchvision==0.29.1"}
extras="."
[ $want_test = 1 ] && extras=".[test,edge]"  # edge = MNN, a prebuilt wheel
# The llama.cpp tier ([cpu] extra) compiles llama.cpp from source (about 19 CPU-minutes
# measured here), so --test leaves it out; its tests skip with a reason. To run them:
#   CMAKE_ARGS=-DLLAVA_BUILD=OFF .venv/bin/pip install -e '.[cpu]' && .venv/bin/python -m pytest -q tests/test_llamacpp.py
# shellcheck disable=SC2086
.venv/bin/python -m pip install -q $torch_pair -e "$extras"
echo "CareLLM is installed in .venv (run: .venv/bin/carellm --help)"
