#!/usr/bin/env bash
# Installs what permit needs from Debian 12's packages (only those missing;
# as root, with apt-get) and configures and builds it in ./build with -j2.
# Used by scripts/dev.sh, scripts/test.sh, .ci/run and deploy/Dockerfile,
# so there is one install recipe.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  libabsl-dev librocksdb-dev libssl-dev libcli11-dev prometheus-cpp-dev
  libgoogle-perftools-dev   # tcmalloc_minimal for permitd and permit-bench
  libgtest-dev libgmock-dev libbenchmark-dev
  python3
  python3-yaml systemd   # scripts/check-deploy.sh
  clang-14 libclang-rt-14-dev   # scripts/fuzz.sh: libFuzzer
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: run as root to install packages (or install them yourself)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B build -DCMAKE_BUILD_TYPE="$BUILD_TYPE" >/dev/null
cmake --build build -j2
