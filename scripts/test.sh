#!/usr/bin/env bash
# The whole test suite, set-up included (CI starts from a clean clone): scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# A hung test must not eat CI's 90 minutes: faulthandler prints every thread's stack after 10 min,
# pytest-timeout fails the test after 25 (per test, fixtures included; a Blender scenario takes 1-5).
exec .venv/bin/python -m pytest -q -o faulthandler_timeout=600 --timeout=1500 "$@"
