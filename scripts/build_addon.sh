#!/usr/bin/env bash
# Build dist/headlift-<version>.zip (see scripts/build_addon.py for options).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/build_addon.py "$@"
