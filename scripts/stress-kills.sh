#!/usr/bin/env bash
# Crash-recovery stress: SIGKILL a subscriber that holds borrowed samples N times (default 1000)
# while a publisher publishes throughout; the publisher must never block or fail, and at the end
# its sample slots and heap bytes must be back at their baseline and the domain clean.
#
#   scripts/stress-kills.sh [KILLS]
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-1000}"
IPC_STRESS_KILLS="$kills" cargo test --release -p ipc-runtime --test crash_recovery \
    killed_subscribers_leak_nothing_and_never_block_the_publisher -- --exact --nocapture 2>&1 \
    | grep -E "subscribers killed|test result|panicked|FAILED"
