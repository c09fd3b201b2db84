#!/usr/bin/env bash
# A/B of two builds of Benchmarks' ChainProfile: each binary's `paired` chain/direct ratios in turn, against one
# BenchMockServer in a process of its own, so both builds meet the same server and the same machine.
#
# Usage: scripts/ab-chain.sh <ChainProfile before> <ChainProfile after> [rounds] [calls per block] [blocks]
#   git worktree add /tmp/before <commit> && (cd /tmp/before/Benchmarks && swift build -c release --product ChainProfile)
#   cp /tmp/before/Benchmarks/.build/release/ChainProfile /tmp/cp-before
#   scripts/ab-chain.sh /tmp/cp-before Benchmarks/.build/release/ChainProfile 3 500 10
# LLMFB_BENCH_TRANSPORT=nio measures on NIOHTTPClientTransport (the default here), anything else on AsyncHTTPClient.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,9p' "$0" >&2
    exit 2
fi
before="$1"
after="$2"
rounds="${3:-3}"
calls="${4:-500}"
blocks="${5:-10}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/Benchmarks"
swift build -c release --product BenchMockServer >&2
bin="$(swift build -c release --show-bin-path)"

coproc MOCK { exec "$bin/BenchMockServer"; }
mock_pid=$MOCK_PID
trap 'kill "$mock_pid" 2>/dev/null || true' EXIT
read -r -t 60 -u "${MOCK[0]}" word port
if [[ "$word" != "PORT" || -z "$port" ]]; then
    echo "the mock server did not report its port" >&2
    exit 1
fi
export LLMFB_BENCH_MOCK_URL="http://127.0.0.1:$port"
export LLMFB_BENCH_TRANSPORT="${LLMFB_BENCH_TRANSPORT:-nio}"
for _ in $(seq 1 "$rounds"); do
    for program in "$before" "$after"; do
        printf '%s: ' "$program"
        "$program" paired "$calls" "$blocks" chain,direct | grep pooled
    done
done
