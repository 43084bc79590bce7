#!/usr/bin/env bash
# The test command from the README and the whole of CI: install what the tests need, then run them.
# Extra arguments go to pytest (e.g. bash scripts/test.sh tests/rigs -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
# CPU torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/pip install -q --disable-pip-version-check -e ".[review,train,test]"
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
