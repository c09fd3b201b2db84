#!/usr/bin/env python3
"""Prints the table of scripts/gateway-bench.sh from its results file (lines `key=value`).

Usage: report.py RESULTS
"""

import math
import sys

TARGETS = [
    ("nginx", "direct nginx"),
    ("proxy", "nginx proxy_pass (reference)"),
    ("gateway", "llm-fallback gateway"),
    ("messages_pass", "gateway /v1/messages, passthrough"),
    ("messages_xlat", "gateway /v1/messages, translated"),
    ("litellm", "LiteLLM proxy"),
]


def load(path):
    results = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                key, value = line.split("=", 1)
                results[key] = value
    return results


def num(results, key):
    try:
        value = float(results[key])
    except (KeyError, ValueError):
        return None
    return None if math.isnan(value) else value


def ms(us, signed=False):
    if us is None:
        return "n/a"
    value = us / 1000.0
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    if abs(value) >= 100:
        text = f"{value:+.0f}" if signed else f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:+.1f}" if signed else f"{value:.1f}"
    return text + " ms"


def rps(value):
    return "n/a" if value is None else f"{value:,.0f}"


def mib(value):
    return "n/a" if value is None else f"{value:.1f} MiB"


def errors(results, prefix):
    """Non-2xx and socket errors of one wrk run, or '' when none."""
    parts = []
    for kind in ("status", "connect", "read", "write", "timeout"):
        count = num(results, f"{prefix}.{kind}")
        if count:
            parts.append(f"{int(count)} {'non-2xx' if kind == 'status' else kind}")
    return ", ".join(parts)


def main():
    r = load(sys.argv[1])
    conns = r.get("config.conns", "64")
    out = []
    out.append(
        f"| target | max req/s (c={conns}) | p50 @c1 | p99 @c1 | added p50 @c1 | added p99 @c1 "
        f"| p99 @ paced rate (achieved req/s) | req/s ÷ LiteLLM | req/s ÷ direct |"
    )
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    base50, base99 = num(r, "nginx.c1.p50_us"), num(r, "nginx.c1.p99_us")
    lite = num(r, "litellm.tput.rps")
    direct = num(r, "nginx.tput.rps")
    notes = []
    for key, label in TARGETS:
        reason = r.get(f"{key}.unavailable")
        if reason:
            out.append(f"| {label} | unavailable | | | | | | | |")
            notes.append(f"{label}: not measured: {reason}")
            continue
        tput = num(r, f"{key}.tput.rps")
        p50, p99 = num(r, f"{key}.c1.p50_us"), num(r, f"{key}.c1.p99_us")
        add50 = None if key == "nginx" or p50 is None or base50 is None else p50 - base50
        add99 = None if key == "nginx" or p99 is None or base99 is None else p99 - base99
        rate_p99 = num(r, f"{key}.rate.p99_us")
        achieved = num(r, f"{key}.rate.rps")
        target = num(r, f"{key}.rate.target")
        rate_cell = "n/a"
        if rate_p99 is not None:
            rate_cell = f"{ms(rate_p99)} ({rps(achieved)}"
            if target is not None and target < num(r, "config.rate"):
                rate_cell += f"; 80% of its max, {rps(target)} asked"
            rate_cell += ")"
        vs_lite = "n/a" if tput is None or not lite else f"{tput / lite:,.1f}×"
        vs_direct = "n/a" if tput is None or not direct else f"{100 * tput / direct:.1f}%"
        out.append(
            f"| {label} | {rps(tput)} | {ms(p50)} | {ms(p99)} | "
            f"{'—' if key == 'nginx' else ms(add50, True)} | {'—' if key == 'nginx' else ms(add99, True)} | "
            f"{rate_cell} | {vs_lite} | {vs_direct} |"
        )
        for phase, name in (("c1", "c1"), ("tput", f"c={conns}"), ("rate", "paced")):
            e = errors(r, f"{key}.{phase}")
            if e:
                notes.append(f"{label}, {name} run: {e} (those requests count in its figures)")
    print("\n".join(out))
    print()

    # The Anthropic surface against the OpenAI surface, in the same run.
    g_tput, g50 = num(r, "gateway.tput.rps"), num(r, "gateway.c1.p50_us")
    for key, label in (("messages_pass", "passthrough (Anthropic client and provider)"), ("messages_xlat", "translated (Anthropic client, OpenAI provider)")):
        tput, p50 = num(r, f"{key}.tput.rps"), num(r, f"{key}.c1.p50_us")
        if tput is None or g_tput is None or p50 is None or g50 is None or base50 is None:
            print(f"/v1/messages {label}: not measured ({r.get(f'{key}.unavailable', 'no result')})")
            continue
        added, g_added = p50 - base50, g50 - base50
        print(
            f"/v1/messages {label}: {tput / g_tput:.2f}× the OpenAI surface's throughput; added p50 "
            f"{ms(added)} vs {ms(g_added)} on the OpenAI surface"
        )
    print()

    # Failover.
    for key, label in (("gateway", "gateway"), ("litellm", "LiteLLM")):
        if r.get(f"{key}.unavailable"):
            continue
        f50, f99 = num(r, f"{key}.failover.p50_us"), num(r, f"{key}.failover.p99_us")
        g50, g99 = num(r, f"{key}.c1.p50_us"), num(r, f"{key}.c1.p99_us")
        if f50 is not None and g50 is not None:
            print(
                f"Failover, {label} (c1; primary answers 500 at once, backup nginx; no retries, no breaker/cooldown): "
                f"p50 {ms(f50)}, p99 {ms(f99)}; added by one failover vs its healthy model: "
                f"p50 {ms(f50 - g50, True)}, p99 {ms(f99 - g99, True)}"
            )
            e = errors(r, f"{key}.failover")
            if e:
                print(f"  failover run errors: {e}")
        else:
            print(f"Failover, {label}: not measured ({r.get(f'{key}.failover.unavailable', 'no result')})")

    # Memory.
    if not r.get("gateway.unavailable"):
        print(
            "Gateway memory (RSS): idle after start "
            f"{mib(num(r, 'gateway.rss.idle'))}; after the runs above {mib(num(r, 'gateway.rss.before_sustain'))}; "
            f"sustained {r.get('config.sustain', '?')} s at c={conns} "
            f"({rps(num(r, 'gateway.sustain.rps'))} req/s): end {mib(num(r, 'gateway.rss.after_sustain'))}, "
            f"max sampled {mib(num(r, 'gateway.rss.sustain_max'))}; samples every 5 s: "
            f"{r.get('gateway.rss.sustain_series', 'n/a')} MiB"
        )
    for key, label in (("gateway", "Gateway"), ("litellm", "LiteLLM")):
        if r.get(f"{key}.unavailable"):
            continue
        if r.get(f"{key}.streams.skipped"):
            print(f"{label} with {r.get('config.streams')} streams: not measured ({r[f'{key}.streams.skipped']})")
            continue
        if f"{key}.streams.opened" not in r:
            continue
        print(
            f"{label} with {r.get(f'{key}.streams.n')} concurrent streams (upstream sends 1 chunk/s): "
            f"{r.get(f'{key}.streams.opened')} opened in {r.get(f'{key}.streams.open_seconds')} s"
            + (f" ({r.get(f'{key}.streams.waiting')} still waiting for a first chunk when the time ran out)"
               if r.get(f"{key}.streams.waiting", "0") not in ("0", "n/a") else "")
            + "; RSS "
            f"{r.get(f'{key}.streams.rss_before_mib')} MiB before, {r.get(f'{key}.streams.rss_open_max_mib')} MiB "
            f"while open (max), {r.get(f'{key}.streams.rss_after_close_mib')} MiB after closing; upstream streams "
            f"open {r.get(f'{key}.streams.upstream_open_during')} during, "
            f"{r.get(f'{key}.streams.upstream_open_after_close')} after the clients closed; "
            f"stream errors: {r.get(f'{key}.streams.errors')}"
        )
    if not r.get("litellm.unavailable"):
        print(f"LiteLLM memory (RSS, process tree): idle after start {mib(num(r, 'litellm.rss.idle'))}, "
              f"after its runs {mib(num(r, 'litellm.rss.after_runs'))}")
    for note in notes:
        print(f"Note: {note}")


if __name__ == "__main__":
    main()
