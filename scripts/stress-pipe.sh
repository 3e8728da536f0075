#!/usr/bin/env bash
# Byte-pipe stress: a writer process sends BYTES bytes (default 1 GiB) in random-sized writes
# (1 B to 200 kB) through a PipeWriter to a reader process, which reads them with a mix of
# BufRead::fill_buf and Read::read of random sizes; both hash what they saw and the hashes and
# counts must match, and the domain must be clean afterwards. Release build; prints the elapsed
# time and the throughput. The default test suite runs the same test with 64 MiB.
#
#   scripts/stress-pipe.sh [BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
bytes="${1:-1073741824}"
if ! [[ "$bytes" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [BYTES]  (a positive integer, default 1073741824)" >&2
    exit 2
fi
test=sixty_four_mib_in_random_writes_arrive_intact
# Build first, so that the time below is the run's alone.
cargo test --release -p ipc-runtime --test pipe_cross_process --no-run
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "streaming $bytes bytes through a pipe between two processes..."
SECONDS=0
if ! PIPE_TEST_BYTES="$bytes" cargo test --release -p ipc-runtime \
    --test pipe_cross_process "$test" -- --exact --nocapture >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "stress-pipe: FAILED after ${SECONDS} s" >&2
    exit 1
fi
wall="$SECONDS"
grep -E "^sent and received" "$log" || true
echo "stress-pipe: OK, $bytes bytes byte-identical (hash checked) in ${wall} s wall time (build excluded; includes hashing on both sides)"
