#!/usr/bin/env bash
# The whole demo from a fresh clone: venv, add-on zip, backend, headless Blender, renders in out/.
#   scripts/demo.sh [portrait]      (default portrait: scikit-image's astronaut)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python scripts/build_addon.py
exec .venv/bin/python scripts/demo.py "$@"
