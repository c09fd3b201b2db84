#!/usr/bin/env bash
# Issue 5: p50/p90/p99/mean latency of ordered vs latency routing, with and without hedging, when the first of three
# providers is slow (400 ms instead of 20 ms) for 10% of its requests. Prints a markdown table.
#
# Builds and runs Benchmarks' RoutingScenario executable in release mode. The mock LLM server runs in a child process
# of it (the same binary with --serve), so the server's CPU stays out of the client's figures.
#
# Usage: scripts/routing-scenario.sh [--requests 600] [--concurrency 8] [--seed 5] [--warmup 10] [--base-ms 20]
#                                    [--slow-ms 400] [--shared-client] [--only 1,2,...]
#
# The first build compiles AsyncHTTPClient, SwiftNIO and BoringSSL in release mode: several minutes on 2 cores.
# The run itself takes about half a minute with the defaults.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/Benchmarks"

echo "== Building (release)" >&2
swift build -c release --product RoutingScenario >&2
bin="$(swift build -c release --show-bin-path)"

echo "== Running" >&2
exec "$bin/RoutingScenario" "$@"
