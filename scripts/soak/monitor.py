#!/usr/bin/env python3
"""Watches the gateway during scripts/soak.sh and runs the outage schedule (standard library only).

Every --interval seconds it samples the gateway process: resident memory (VmRSS in /proc/PID/status), open file
descriptors (entries of /proc/PID/fd), threads, and whether it is alive; one CSV line each to --out
(t,alive,rss_kib,fds,threads,cpu_s,upstream_requests). At the times of --down it tells an upstream to go down:
`START:SECONDS:PORT:MODE` (MODE refuse or 503; see chaos_upstream.py's /control/down), and writes what it did to
--events.

Runs for --duration seconds, or until SIGTERM.

Usage: monitor.py --pid PID --duration S --out FILE [--interval 5] [--down 60:90:PORT:refuse ...]
                  [--upstream PORT ...] [--events FILE]
"""

import argparse
import json
import os
import signal
import sys
import time
import urllib.request


def status_fields(pid):
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
    except OSError:
        return None
    return fields


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU time of the process so far (/proc/PID/stat), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return -1.0


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def upstream_requests(ports):
    """The requests the upstreams have answered (those that answer /stats: one refusing connections does not)."""
    total = 0
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=2) as response:
                total += json.loads(response.read())["requests"]
        except Exception:
            pass
    return total


def control(port, path):
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except Exception as error:
        return f"failed: {error}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--events", default="")
    parser.add_argument("--down", action="append", default=[])
    parser.add_argument("--upstream", action="append", type=int, default=[])
    args = parser.parse_args()

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    schedule = []
    for item in args.down:
        start, seconds, port, mode = item.split(":")
        schedule.append((float(start), float(seconds), int(port), mode))
    schedule.sort()
    events = open(args.events, "a") if args.events else sys.stderr

    t0 = time.monotonic()
    next_sample = 0.0
    with open(args.out, "w") as out:
        out.write("t,alive,rss_kib,fds,threads,cpu_s,upstream_requests\n")
        while not stop["now"]:
            now = time.monotonic() - t0
            while schedule and schedule[0][0] <= now:
                start, seconds, port, mode = schedule.pop(0)
                result = control(port, f"/control/down?mode={mode}&seconds={seconds:g}")
                events.write(f"{now:7.1f} s: upstream :{port} down ({mode}) for {seconds:g} s -> {result}\n")
                events.flush()
            if now >= next_sample:
                fields = status_fields(args.pid)
                alive = fields is not None and not fields.get("State", "").startswith("Z")
                rss = int(fields["VmRSS"].split()[0]) if alive and "VmRSS" in fields else -1
                threads = int(fields["Threads"]) if alive and "Threads" in fields else -1
                fds = fd_count(args.pid) if alive else -1
                cpu = cpu_seconds(args.pid) if alive else -1.0
                out.write(f"{now:.1f},{int(alive)},{rss},{fds},{threads},{cpu:.2f},{upstream_requests(args.upstream)}\n")
                out.flush()
                next_sample += args.interval
                if not alive:
                    events.write(f"{now:7.1f} s: the gateway (pid {args.pid}) is gone\n")
                    events.flush()
                    break
            if now >= args.duration:
                break
            wake = min([next_sample] + [s[0] for s in schedule[:1]])
            time.sleep(max(0.05, min(1.0, wake - (time.monotonic() - t0))))


if __name__ == "__main__":
    main()
