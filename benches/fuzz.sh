#!/usr/bin/env bash
# The long fuzz runs: every target of fuzz/ for FUZZ_SECONDS each (default 300), the corpus kept
# in target/fuzz-corpus/TARGET so that each run starts where the last one stopped. Same build and
# checks as the short runs of tests/run (tests/fuzz); crashing inputs are kept in
# target/fuzz/artifacts/TARGET/ (under CARGO_TARGET_DIR when set).
#
#   benches/fuzz.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
export FUZZ_SECONDS="${FUZZ_SECONDS:-300}"
export FUZZ_CORPUS="${FUZZ_CORPUS:-${CARGO_TARGET_DIR:-$PWD/target}/fuzz-corpus}"
exec tests/fuzz "$@"
