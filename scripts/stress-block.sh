#!/usr/bin/env bash
# Overflow::Block stress: one publisher process sends N messages (default 10^7) with
# variable-length ShmVec/ShmString payloads to four subscriber processes; every subscriber must
# receive sequence numbers 1..=N exactly once and in order (nothing lost, duplicated or
# reordered) with intact payloads, and the domain must be clean afterwards. Release build; prints
# the elapsed time and messages/s. The default test suite runs the same test with 10^5 messages.
#
#   scripts/stress-block.sh [MESSAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${1:-10000000}"
if ! [[ "$messages" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [MESSAGES]  (a positive integer, default 10000000)" >&2
    exit 2
fi
test=fan_out_to_four_processes_with_block_has_no_gaps
# Build first, so that the time below is the run's alone.
cargo test --release -p ipc-runtime --test pubsub_cross_process --no-run
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "publishing $messages messages to 4 subscribers (Overflow::Block)..."
SECONDS=0
if ! IPC_STRESS_MESSAGES="$messages" cargo test --release -p ipc-runtime \
    --test pubsub_cross_process "$test" -- --exact --nocapture >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "stress-block: FAILED after ${SECONDS} s" >&2
    exit 1
fi
wall="$SECONDS"
# The test's own line: time from starting the publisher until every subscriber is done.
grep -E "^fan-out: |test result" "$log"
echo "stress-block: $messages messages, ${wall} s wall clock including process start-up"
