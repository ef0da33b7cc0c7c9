#!/usr/bin/env bash
# README command 2 (and .ci/run): set up, build, and run every test with
# ctest: unit, integration, crash and end-to-end; then the same tests under
# AddressSanitizer + UndefinedBehaviorSanitizer and the concurrency tests
# under ThreadSanitizer (scripts/sanitize.sh), and each fuzz target for 30 s
# (scripts/fuzz.sh). Each has a build folder of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir build --output-on-failure -j2 --timeout 600
scripts/sanitize.sh
scripts/fuzz.sh
