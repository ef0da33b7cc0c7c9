#!/usr/bin/env bash
# README command 1: set up, build, and start permitd in dev mode on
# 127.0.0.1:7443 with its audit log in ./data and printed dev credentials.
# Extra arguments go to permitd (e.g. --listen 127.0.0.1:7500).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/permitd --dev --data ./data "$@"
