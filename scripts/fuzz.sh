#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/, one per parser or verifier of
# untrusted bytes) with clang-14 in ./build-fuzz, then runs each for
# FUZZ_SECONDS (default 30) seconds, one after the other, starting from a
# copy of its seed corpus in tests/fuzz/corpus/<target>/ (the repository's
# corpus is not modified). Fails if any target finds a crash, a sanitizer
# report (ASan, UBSan, LeakSanitizer), a timeout or a broken property; the
# input that did it is kept as build-fuzz/findings/<target>/crash-* and can
# be replayed with `build-fuzz/tests/fuzz/<target> <file>`.
#
#   scripts/fuzz.sh                      # every target, 30 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh replay_fuzz   # one target, longer
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${FUZZ_SECONDS:-30}
TARGETS=(validation_fuzz replay_fuzz checkpoint_fuzz merkle_proof_fuzz principals_fuzz)
if (($#)); then TARGETS=("$@"); fi

CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPERMIT_FUZZ=ON -DPERMIT_BUILD_TESTS=OFF -DPERMIT_TCMALLOC=OFF >/dev/null
cmake --build build-fuzz -j2 --target "${TARGETS[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/permit-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
for t in "${TARGETS[@]}"; do
  mkdir -p "$work/$t" "build-fuzz/findings/$t"
  cp tests/fuzz/corpus/"$t"/* "$work/$t/"
  echo "fuzz: $t for ${SECONDS_EACH}s" >&2
  # -timeout: an input taking 10 s is a hang; -rss_limit_mb: one using 2 GB
  # is a memory blow-up. Either counts as a finding.
  if ! build-fuzz/tests/fuzz/"$t" -max_total_time="$SECONDS_EACH" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/findings/$t/" "$work/$t" >"$work/$t.log" 2>&1; then
    tail -n 60 "$work/$t.log" >&2
    failed+=("$t")
  else
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+[[:space:]]+DONE)' \
      "$work/$t.log" | sed "s/^/fuzz: $t: /" >&2 || true
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (inputs in build-fuzz/findings/)" >&2
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets, ${SECONDS_EACH}s each, no findings" >&2
