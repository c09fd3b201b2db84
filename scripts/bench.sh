#!/usr/bin/env bash
# Builds and runs the llm-fallback benchmarks (the separate package in Benchmarks/, built with ordo-one/benchmark),
# then prints, from that one run, a table per operation and the ratios chain/direct, failover/direct and
# stream chain/direct.
#
# The mock LLM server runs in a process of its own (Benchmarks' BenchMockServer), so that the time and allocations
# the benchmarks report are the client's alone; the benchmarks find it through LLMFB_BENCH_MOCK_URL.
#
# Usage: scripts/bench.sh [extra options for `swift package benchmark`, e.g. --filter 'Chain.*']
#
# Environment:
#   BENCH_RESULTS  where the JMH export goes (default: Benchmarks/.build/bench-results)
#
# The first build compiles AsyncHTTPClient, SwiftNIO and BoringSSL in release mode: several minutes on 2 cores.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/Benchmarks"
results="${BENCH_RESULTS:-$root/Benchmarks/.build/bench-results}"
baseline="bench-latest"
mkdir -p "$results"

echo "== Building (release)"
swift build -c release --product BenchMockServer
bin="$(swift build -c release --show-bin-path)"

echo "== Starting the mock server"
coproc MOCK { exec "$bin/BenchMockServer"; }
mock_pid=$MOCK_PID
mock_in=${MOCK[1]}
cleanup() {
    # Closing its standard input makes the server print its connection count and exit.
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
echo "mock server on $LLMFB_BENCH_MOCK_URL (pid $mock_pid)"

echo "== Running the benchmarks"
# One run, stored as a baseline (in Benchmarks/.benchmarkBaselines, which git ignores); both the tables below and
# the ratios are read from it.
swift package --allow-writing-to-package-directory benchmark baseline update "$baseline" --no-progress "$@"
cleanup

echo "== Results (plugin tables)"
swift package benchmark baseline read "$baseline" --no-progress "$@"

rm -f "$results"/*.jmh.json
swift package --allow-writing-to-package-directory benchmark baseline read "$baseline" --format jmh \
    --path "$results" --no-progress "$@" >/dev/null

echo "== Summary (p50 per operation; ratios from the same run)"
python3 - "$results/$baseline.jmh.json" <<'PY'
import json
import sys

with open(sys.argv[1]) as handle:
    elements = json.load(handle)

rows = {}
for element in elements:
    # "package.benchmark.<Target>.<name with spaces as underscores>"
    parts = element["benchmark"].split(".", 3)
    name = parts[3].replace("_", " ") if len(parts) == 4 else element["benchmark"]
    metrics = {"Throughput": element["primaryMetric"]}
    metrics.update(element.get("secondaryMetrics", {}))
    rows[name] = {
        "target": parts[2] if len(parts) == 4 else "",
        "samples": element.get("measurementIterations"),
        "metrics": metrics,
    }


def metric(name, prefix, percentile="50.0"):
    for key, value in rows[name]["metrics"].items():
        if key.startswith(prefix):
            return value["scorePercentiles"].get(percentile)
    return None


def find(prefix):
    if prefix in rows:
        return prefix
    for name in rows:
        if name.startswith(prefix):
            return name
    return None


def fmt(value, digits=1):
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


order = ["Adapters", "Chain", "Streaming"]
names = sorted(rows, key=lambda n: (order.index(rows[n]["target"]) if rows[n]["target"] in order else 9, n))
has_instructions = any(metric(n, "Instructions") for n in names)
header = ["benchmark", "p50 µs", "p90 µs", "ops/s", "mallocs", "samples"]
if has_instructions:
    header.insert(5, "instructions")
table = [header]
for name in names:
    row = [
        name,
        fmt(metric(name, "Time (wall clock)")),
        fmt(metric(name, "Time (wall clock)", "90.0")),
        fmt(metric(name, "Throughput")),
        fmt(metric(name, "Malloc (total)"), 0),
        str(rows[name]["samples"]),
    ]
    if has_instructions:
        row.insert(5, fmt(metric(name, "Instructions"), 0))
    table.append(row)
widths = [max(len(row[i]) for row in table) for i in range(len(header))]
for index, row in enumerate(table):
    print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
    if index == 0:
        print("  ".join("-" * w for w in widths))

formats = [f for f in ("OpenAI", "Anthropic", "Gemini") if find(f + ": decode stream")]
if formats:
    print()
    table = [["per stream chunk (p50)", "stream µs", "parser µs", "decoder µs", "stream mallocs", "parser mallocs"]]
    for fmt_name in formats:
        stream, parser = find(fmt_name + ": decode stream"), find(fmt_name + ": SSE parser only")
        chunks = int(stream.split("(")[1].split()[0]) if "(" in stream else 500
        ts, tp = metric(stream, "Time (wall clock)"), metric(parser, "Time (wall clock)") if parser else None
        ms, mp = metric(stream, "Malloc (total)"), metric(parser, "Malloc (total)") if parser else None
        table.append([
            f"{fmt_name} ({chunks} chunks)",
            f"{ts / chunks:.2f}" if ts else "-",
            f"{tp / chunks:.2f}" if tp else "-",
            f"{(ts - tp) / chunks:.2f}" if ts and tp else "-",
            f"{ms / chunks:.1f}" if ms else "-",
            f"{mp / chunks:.1f}" if mp else "-",
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for index, row in enumerate(table):
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            print("  ".join("-" * w for w in widths))

print()
ratios = []


def ratio(label, numerator, denominator, note=""):
    a, b = find(numerator), find(denominator)
    if not a or not b:
        return
    ta, tb = metric(a, "Time (wall clock)"), metric(b, "Time (wall clock)")
    ma, mb = metric(a, "Malloc (total)"), metric(b, "Malloc (total)")
    ratios.append([
        label,
        f"{ta / tb:.2f}" if ta and tb else "-",
        f"{ta - tb:+,.1f}" if ta is not None and tb is not None else "-",
        f"{ma / mb:.2f}" if ma and mb else "-",
        f"{ma - mb:+,.0f}" if ma is not None and mb is not None else "-",
        note,
    ])


for name in ("OpenAI", "Anthropic", "Gemini"):
    ratio(f"{name} encode / JSONEncoder", f"{name}: encode request", f"{name}: encode request, JSONEncoder baseline", "mapping + writing vs writing alone")
    ratio(f"{name} decode / JSONDecoder", f"{name}: decode response", f"{name}: decode response, JSONDecoder baseline")
ratio("chain / direct", "Chain: chain, one provider", "Chain: direct")
ratio("failover / direct", "Chain: chain, one failover", "Chain: direct", "two HTTP exchanges vs one")
stream_chain, stream_direct = find("Streaming: chain"), find("Streaming: direct")
per_chunk = ""
if stream_chain and stream_direct:
    difference = metric(stream_chain, "Time (wall clock)") - metric(stream_direct, "Time (wall clock)")
    per_chunk = f"{difference * 1000 / 200:+,.0f} ns per chunk (200 chunks)"
ratio("stream chain / direct", "Streaming: chain", "Streaming: direct", per_chunk)
if ratios:
    table = [["ratio (p50)", "time", "Δ µs", "mallocs", "Δ mallocs", ""]] + ratios
    widths = [max(len(row[i]) for row in table) for i in range(6)]
    for index, row in enumerate(table):
        print("  ".join(cell.ljust(widths[i]) if i in (0, 5) else cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            print("  ".join("-" * w for w in widths))

if stream_chain and stream_direct:
    first_direct = metric(stream_direct, "Time to first chunk")
    first_chain = metric(stream_chain, "Time to first chunk")
    if first_direct and first_chain:
        print()
        print(
            f"time to first chunk (p50): direct {first_direct / 1000:,.1f} µs, chain {first_chain / 1000:,.1f} µs "
            f"(ratio {first_chain / first_direct:.2f})"
        )
PY
