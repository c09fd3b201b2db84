#!/usr/bin/env python3
"""Prints the resident memory, in MiB, of a process and all its descendants (for scripts/gateway-bench.sh).

Usage: rss.py PID   -> "123.4" (or "n/a" when the process is gone)
"""

import os
import sys


def children_map():
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return 0


def tree_rss_mib(pid):
    """The summed RSS of pid and its descendants in MiB, or None when pid is gone."""
    own = rss_kib(pid)
    if own is None:
        return None
    kids = children_map()
    total, stack = own, list(kids.get(pid, []))
    while stack:
        child = stack.pop()
        total += rss_kib(child) or 0
        stack.extend(kids.get(child, []))
    return total / 1024.0


if __name__ == "__main__":
    value = tree_rss_mib(int(sys.argv[1]))
    print("n/a" if value is None else f"{value:.1f}")
