#!/usr/bin/env bash
# README command 2 (and .ci/run): set up, build, and run every test with
# ctest: unit, integration, crash and end-to-end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir build --output-on-failure -j2 --timeout 600
