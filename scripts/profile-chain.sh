#!/usr/bin/env bash
# Runs Benchmarks' ChainProfile (the chain's overhead over a direct call, rounds of each interleaved in one process)
# against BenchMockServer in a process of its own, optionally under a profiler.
#
# Usage: scripts/profile-chain.sh [compare|compare-bounded|paired|direct|bounded|chain|failover] [calls per round] [rounds] [paths, for paired]
#   PROFILER="perf record -g -o /tmp/chain.perf" scripts/profile-chain.sh chain 1000 20
#   PROFILER="heaptrack -o /tmp/chain" scripts/profile-chain.sh chain 1000 5
#   PROFILER="valgrind --tool=callgrind --callgrind-out-file=/tmp/chain.cg" scripts/profile-chain.sh chain 100 1
#
# valgrind 3.19 cannot read the DWARF 5 the toolchain writes: for callgrind, set STRIP_DEBUG=1 to run a copy of the
# binary without debug information (function names stay, from the symbol table).
#
# Builds both in release first (incremental after the first build of Benchmarks/).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/Benchmarks"
swift build -c release --product BenchMockServer >&2
swift build -c release --product ChainProfile >&2
bin="$(swift build -c release --show-bin-path)"

coproc MOCK { exec "$bin/BenchMockServer"; }
mock_pid=$MOCK_PID
mock_in=${MOCK[1]}
cleanup() {
    if [[ -n "${mock_in:-}" ]]; then
        eval "exec ${mock_in}>&-" || true
        mock_in=""
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$mock_pid" 2>/dev/null || return 0
            sleep 0.2
        done
        kill "$mock_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
read -r -t 60 -u "${MOCK[0]}" word port
if [[ "$word" != "PORT" || -z "$port" ]]; then
    echo "the mock server did not report its port" >&2
    exit 1
fi
export LLMFB_BENCH_MOCK_URL="http://127.0.0.1:$port"
program="$bin/ChainProfile"
if [[ -n "${STRIP_DEBUG:-}" ]]; then
    program="$(mktemp -d)/ChainProfile"
    objcopy --strip-debug "$bin/ChainProfile" "$program"
fi
# shellcheck disable=SC2086
${PROFILER:-} "$program" "$@"
