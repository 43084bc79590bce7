#!/usr/bin/env bash
# The main job, simulated end to end: a sweep plan runs on the simulated camera and the GRBL emulator
# (on a pty), every frame lands in ./lab/catalog.db, then the catalog summary and contact sheet are shown.
# Usage: bash scripts/demo.sh [PLAN.toml ...]   (default: examples/aperture-sweep.toml, then
# examples/camera-path.toml: passes shifted along the slider, so the README model also sees camera paths;
# rerun = resume/no-op)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then set -- examples/aperture-sweep.toml examples/camera-path.toml; fi
CATALOG="${CINECTRL_CATALOG:-lab/catalog.db}"
if [ ! -x .venv/bin/cinectrl ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    # Capture needs no torch: the core install is enough for the demo.
    .venv/bin/pip install -q --disable-pip-version-check -e .
fi
export LANG=C LC_ALL=C
for PLAN in "$@"; do
    echo "== checking $PLAN against the rig (nothing moves) =="
    .venv/bin/cinectrl capture plan "$PLAN" --catalog "$CATALOG" --show 6
    echo
    echo "== running the session ($PLAN) =="
    .venv/bin/cinectrl capture run "$PLAN" --catalog "$CATALOG" --init
    echo
done
echo "== catalog =="
.venv/bin/cinectrl catalog stats --catalog "$CATALOG" || true
echo
.venv/bin/cinectrl capture status --catalog "$CATALOG"
