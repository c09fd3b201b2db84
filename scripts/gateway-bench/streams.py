#!/usr/bin/env python3
"""Holds N concurrent `"stream": true` chat requests open against a server and measures its memory meanwhile
(for scripts/gateway-bench.sh; standard library only, raw sockets on asyncio).

Each stream counts as open once its response headers (200) and its first SSE `data:` line have arrived; it then
keeps reading. When all are open, or after --open-timeout, the resident memory of --pid (and its descendants) is
sampled for --hold seconds; then every connection is closed and, after --settle seconds, the upstream's /stats
(--stats-url) tell whether the server cancelled its upstream streams.

Prints one line: RESULT key=value ...
"""

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rss import tree_rss_mib  # noqa: E402


def upstream_stats(url):
    if not url:
        return {}
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except Exception:
        return {}


class Stream:
    def __init__(self):
        self.open = False
        self.status = None
        self.error = None
        self.writer = None


async def run_stream(s, host, port, path, body, opened, connect_gate):
    try:
        async with connect_gate:
            reader, writer = await asyncio.open_connection(host, port)
        s.writer = writer
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {os.environ.get('BENCH_KEY', 'test')}\r\nAccept: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        s.status = int(head.split(b" ", 2)[1])
        if s.status != 200:
            s.error = f"status {s.status}"
            return
        seen = b""
        while b"data:" not in seen:
            data = await reader.read(4096)
            if not data:
                s.error = "closed before the first chunk"
                return
            seen = (seen + data)[-8192:]
        s.open = True
        opened()
        while True:  # keep draining, as a real client would
            data = await reader.read(65536)
            if not data:
                s.open = False
                s.error = "closed by the server"
                return
    except asyncio.CancelledError:
        raise
    except Exception as error:  # noqa: BLE001
        s.error = type(error).__name__


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument("--model", required=True)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--open-timeout", type=float, default=30)
    parser.add_argument("--hold", type=float, default=5)
    parser.add_argument("--settle", type=float, default=4)
    parser.add_argument("--stats-url", default="")
    args = parser.parse_args()

    body = json.dumps(
        {"model": args.model, "stream": True, "messages": [{"role": "user", "content": "Count slowly."}]}
    ).encode()
    before = tree_rss_mib(args.pid)
    stats_before = upstream_stats(args.stats_url)
    streams = [Stream() for _ in range(args.n)]
    count = 0
    all_open = asyncio.Event()  # set when every stream has opened or failed

    def opened():
        nonlocal count
        count += 1
        settled()

    def settled():
        if count + sum(1 for s in streams if s.error) >= args.n:
            all_open.set()

    gate = asyncio.Semaphore(200)  # connects in flight at once (the server's accept backlog may be small)
    start = time.monotonic()
    tasks = [
        asyncio.create_task(run_stream(s, args.host, args.port, args.path, body, opened, gate)) for s in streams
    ]
    for task in tasks:
        task.add_done_callback(lambda _: settled())
    try:
        await asyncio.wait_for(all_open.wait(), args.open_timeout)
    except asyncio.TimeoutError:
        pass
    open_seconds = time.monotonic() - start
    samples = []
    end = time.monotonic() + args.hold
    while time.monotonic() < end:
        value = tree_rss_mib(args.pid)
        if value is not None:
            samples.append(value)
        await asyncio.sleep(0.5)
    still_open = sum(1 for s in streams if s.open)
    stats_during = upstream_stats(args.stats_url)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for s in streams:
        if s.writer is not None:
            try:
                s.writer.close()
            except Exception:  # noqa: BLE001
                pass
    await asyncio.sleep(args.settle)
    after = tree_rss_mib(args.pid)
    stats_after = upstream_stats(args.stats_url)
    errors = {}
    waiting = 0
    for s in streams:
        if s.error and not s.open:
            errors[s.error] = errors.get(s.error, 0) + 1
        elif not s.open:
            waiting += 1  # no answer yet (queued somewhere) when the time ran out
    result = {
        "n": args.n,
        "opened": count,
        "still_open": still_open,
        "waiting": waiting,
        "open_seconds": round(open_seconds, 2),
        "rss_before_mib": before,
        "rss_open_max_mib": max(samples) if samples else None,
        "rss_after_close_mib": after,
        "upstream_open_during": stats_during.get("open"),
        "upstream_open_after_close": stats_after.get("open"),
        "upstream_started": (stats_after.get("started", 0) - stats_before.get("started", 0)) if stats_after else None,
        "errors": ";".join(f"{k.replace(' ', '_')}:{v}" for k, v in sorted(errors.items())) or "none",
    }
    print("RESULT " + " ".join(f"{k}={'n/a' if v is None else (f'{v:.1f}' if isinstance(v, float) else v)}"
                               for k, v in result.items()), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
