#!/usr/bin/env python3
"""Prints the figures of scripts/soak.sh and checks them; exits 1 when a check fails.

Inputs: the results file (`key=value` lines written by soak.sh), wrk's output (RESULT and COUNT lines from
soak.lua), the monitor's samples (CSV), and the upstreams' final /stats (JSON, one file each).

Usage: report.py --results FILE --wrk FILE --samples FILE [--upstream-stats FILE ...] [--warmup S]
"""

import argparse
import csv
import json
import statistics
import sys


def load_results(path):
    results = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                key, value = line.split("=", 1)
                results[key] = value
    return results


def load_wrk(path):
    result, counts = {}, {}
    with open(path) as f:
        for line in f:
            if line.startswith("RESULT "):
                for kv in line.split()[1:]:
                    k, _, v = kv.partition("=")
                    result[k] = float(v)
            elif line.startswith("COUNT "):
                k, _, v = line[6:].strip().rpartition("=")
                counts[k] = int(v)
    return result, counts


def load_samples(path):
    rows = []
    with open(path) as f:
        for row in csv.DictReader(f):
            rows.append({k: float(v) for k, v in row.items()})
    return rows


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def flatness(samples, key, warmup, window, end):
    """(start, end, max, min, ok) after the warm-up: start is the median of the samples in the first `window`
    seconds after it, end the median of those in the last `window` seconds of the load; ok when end is within 10%
    of start. (A single sample moves with the requests in flight at that moment: a hang holds a connection for a
    second, an outage drops one upstream's connections; medians over a window see through that, a leak moves them.)"""
    first = [s[key] for s in samples if warmup <= s["t"] < warmup + window]
    last = [s[key] for s in samples if end - window <= s["t"] <= end + 0.5]
    after = [s[key] for s in samples if s["t"] >= warmup]
    if not first or not last:
        return None
    head, tail = statistics.median(first), statistics.median(last)
    ok = head * 0.90 <= tail <= head * 1.10
    return head, tail, max(after), min(after), ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", required=True)
    parser.add_argument("--wrk", required=True)
    parser.add_argument("--samples", required=True)
    parser.add_argument("--upstream-stats", action="append", default=[])
    parser.add_argument("--warmup", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=60.0, help="seconds of the start and end medians")
    args = parser.parse_args()

    results = load_results(args.results)
    wrk, counts = load_wrk(args.wrk)
    samples = load_samples(args.samples)
    upstreams = []
    for path in args.upstream_stats:
        try:
            with open(path) as f:
                upstreams.append(json.load(f))
        except (OSError, ValueError):
            upstreams.append(None)

    checks = []  # (name, ok, detail)
    rows = []  # (figure, value)

    def row(name, value):
        rows.append((name, value))

    # -- load
    requests = int(wrk.get("requests", 0))
    duration_s = wrk.get("duration_us", 0) / 1e6
    rps = wrk.get("rps", 0.0)
    min_rate = float(results.get("config.min_rate", "1000"))
    row("duration", f"{duration_s:.0f} s (warm-up {args.warmup:g} s)")
    row("requests (answered)", f"{requests:,} ({counts.get('sent_chat', 0):,} chat, {counts.get('sent_stream', 0):,} stream sent)")
    row("requests/s achieved", f"{rps:,.0f} (asked {results.get('config.rate', '?')})")
    upstream_total = sum(u.get("requests", 0) for u in upstreams if u)
    if duration_s > 0 and upstream_total:
        row("upstream requests", f"{upstream_total:,} ({upstream_total / duration_s:,.0f}/s: retries and failovers included)")
    checks.append(("rate", rps >= min_rate, f"{rps:,.0f} req/s >= {min_rate:,.0f}"))

    # -- statuses
    statuses = sorted((int(k[7:]), v) for k, v in counts.items() if k.startswith("status_"))
    row("statuses", ", ".join(f"{code}: {n:,}" for code, n in statuses) or "none")
    ok_chat = counts.get("chat_ok", 0)
    ok_stream = counts.get("stream_ok", 0)
    row("complete successes", f"{ok_chat:,} chat, {ok_stream:,} streams "
        f"({counts.get('chat_ok_after_retry_or_failover', 0) + counts.get('stream_ok_after_retry_or_failover', 0):,} "
        "after a retry or failover)")
    row("streams ended by an error event",
        f"{counts.get('stream_error_before_text', 0):,} before any text, {counts.get('stream_error_after_some_text', 0):,} "
        f"after some text, {counts.get('stream_error_after_full_text', 0):,} after the full text")
    errors = sorted((k[6:], v) for k, v in counts.items() if k.startswith("error_"))
    row("error answers (status_code)", ", ".join(f"{k}: {v:,}" for k, v in errors) or "none")
    row("latency p50 / p99 / max", f"{wrk.get('p50_us', 0) / 1000:.1f} ms / {wrk.get('p99_us', 0) / 1000:.1f} ms / "
        f"{wrk.get('max_us', 0) / 1000:.0f} ms")
    socket_errors = {k: int(wrk.get(k, 0)) for k in ("connect", "read", "write", "timeout")}
    row("wrk socket errors", ", ".join(f"{k} {v}" for k, v in socket_errors.items()))

    truncated_kinds = ["truncated_chat", "truncated_stream", "wrong_content", "bad_event", "unknown_marker", "wrong_kind"]
    truncated = sum(counts.get("violation_" + k, 0) for k in truncated_kinds)
    dishonest = counts.get("violation_dishonest_status", 0)
    row("truncated or wrong successes", f"{truncated:,}" + (
        " (" + ", ".join(f"{k} {counts['violation_' + k]}" for k in truncated_kinds if counts.get("violation_" + k)) + ")"
        if truncated else ""))
    row("dishonest error statuses", f"{dishonest:,}")
    for k, v in sorted(counts.items()):
        if k.startswith("reason "):
            row("violation: " + k[7:], f"{v:,}")
    checks.append(("no truncated or wrong success", truncated == 0, f"{truncated} found"))
    checks.append(("every error status honest", dishonest == 0, f"{dishonest} found"))
    checks.append(("successes seen", ok_chat > 0 and ok_stream > 0, f"{ok_chat} chat, {ok_stream} streams"))
    checks.append(("no request past wrk's timeout, no socket error", sum(socket_errors.values()) == 0,
                   ", ".join(f"{k} {v}" for k, v in socket_errors.items())))

    # -- the process
    alive_all = all(s["alive"] == 1 for s in samples) and bool(samples)
    exit_status = results.get("gateway.exit_status", "?")
    crash_lines = results.get("gateway.crash_lines", "0")
    checks.append(("gateway never crashed", alive_all and results.get("gateway.alive_at_end") == "1",
                   f"alive in {sum(1 for s in samples if s['alive'] == 1)}/{len(samples)} samples, "
                   f"alive at the end: {results.get('gateway.alive_at_end', '?')}"))
    checks.append(("clean exit on SIGTERM", exit_status == "0" and crash_lines == "0",
                   f"exit status {exit_status}, crash lines in its log {crash_lines}"))
    row("gateway exit status (SIGTERM at the end)", exit_status)

    # The samples taken under load (wrk's last second excluded: its connections close then).
    loaded = [s for s in samples if s["alive"] == 1 and s["rss_kib"] > 0 and s["t"] <= duration_s - 1]
    after = [s for s in loaded if s["t"] >= args.warmup]
    if loaded:
        rss_all = [s["rss_kib"] for s in loaded]
        fds_all = [s["fds"] for s in loaded]
        row("samples", f"{len(loaded)} (every {results.get('config.interval', '?')} s), {len(after)} after warm-up")
        row("RSS first sample / max", f"{mib(rss_all[0])} / {mib(max(rss_all))}")
        row("fds first sample / max", f"{fds_all[0]:.0f} / {max(fds_all):.0f}")
    for label, key, fmt in (("RSS", "rss_kib", mib), ("open fds", "fds", lambda v: f"{v:.0f}")):
        measured = flatness(loaded, key, args.warmup, args.window, loaded[-1]["t"] if loaded else 0)
        if not measured:
            checks.append((f"{label} flat", False, "not enough samples after warm-up"))
            continue
        head, tail, top, bottom, ok = measured
        row(f"{label} after warm-up: start / end (medians of {args.window:g} s) / max (min)",
            f"{fmt(head)} / {fmt(tail)} / {fmt(top)} ({fmt(bottom)}); end {100 * (tail - head) / head:+.1f}%, "
            f"max {100 * (top - head) / head:+.1f}%")
        checks.append((f"{label} flat within 10% after warm-up", ok,
                       f"start {fmt(head)}, end {fmt(tail)} ({100 * (tail - head) / head:+.1f}%), max {fmt(top)} "
                       f"({100 * (top - head) / head:+.1f}%)"))
    if len(loaded) >= 2 and loaded[-1]["cpu_s"] >= 0 and requests:
        cpu = loaded[-1]["cpu_s"] - loaded[0]["cpu_s"]
        span = loaded[-1]["t"] - loaded[0]["t"]
        row("gateway CPU", f"{cpu:.0f} s over {span:.0f} s ({100 * cpu / max(span, 1):.0f}% of a core; "
            f"{1e6 * cpu / requests:.0f} µs per request)")
    if results.get("upstream.cpu_s"):
        parts = results["upstream.cpu_s"].split("+")
        try:
            total_cpu = sum(float(p) for p in parts)
            row("upstreams' CPU (capacity run included)", f"{total_cpu:.0f} s ({' + '.join(parts)})")
        except ValueError:
            pass
    if "gateway.rss_after_drain" in results:
        row("after the load (drained)", f"RSS {mib(float(results['gateway.rss_after_drain']))}, "
            f"fds {results.get('gateway.fds_after_drain', '?')}")

    # -- faults the upstreams drew
    faults = {}
    for u in upstreams:
        if not u:
            continue
        for k, v in u.get("faults", {}).items():
            faults[k] = faults.get(k, 0) + v
    if faults:
        merged = {}
        for k, v in faults.items():
            name = k.split(":", 1)[1]
            merged[name] = merged.get(name, 0) + v
        healthy = sum(v for k, v in merged.items() if k.startswith("ok"))
        total = sum(merged.values())
        row("upstream faults drawn", f"{total - healthy:,} of {total:,} answers "
            f"({100 * (total - healthy) / max(total, 1):.1f}%): " + ", ".join(
                f"{k} {v:,}" for k, v in sorted(merged.items(), key=lambda kv: -kv[1]) if not k.startswith("ok")))
        refused = sum(u.get("refused_while_down", 0) for u in upstreams if u)
        periods = sum(u.get("down_periods", 0) for u in upstreams if u)
        row("outages", f"{periods} ({results.get('config.outages', '')}); {refused:,} requests answered 503 while down")

    width = max(len(r[0]) for r in rows)
    print("| figure | value |")
    print("| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print()
    failed = [c for c in checks if not c[1]]
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    print()
    print("soak: " + ("all checks passed" if not failed else f"{len(failed)} check(s) failed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
