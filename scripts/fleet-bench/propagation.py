"""The propagation delay of a health transition from one gateway to another, for scripts/fleet-bench.sh.

Each sample asks gateway A for a chain whose first provider answers 429 with a short retry-after-ms: A fails over to
the backup and publishes the Retry-After window to the shared store. The sample's delay runs from just before A's
request is sent until gateway B's GET /health/providers shows the window for that provider, polled back to back
over one keep-alive connection (about a millisecond a poll): an upper bound of the delay, A's own request included.

A chain is used again only once its window has ended on both gateways, so every sample is a new window (the store
publishes a window when it is new or grows). Every wait has a deadline; a sample whose window never shows on B is
counted as lost, not dropped.
"""

import argparse
import http.client
import json
import statistics
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--a", type=int, required=True, help="gateway A's port")
    parser.add_argument("--b", type=int, required=True, help="gateway B's port")
    parser.add_argument("--key", required=True)
    parser.add_argument("--chains", type=int, default=40)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--deadline", type=float, default=5.0, help="seconds a sample may take to show on B")
    args = parser.parse_args()

    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
    a = http.client.HTTPConnection("127.0.0.1", args.a, timeout=30)
    b = http.client.HTTPConnection("127.0.0.1", args.b, timeout=30)

    def window(conn: http.client.HTTPConnection, chain: str):
        conn.request("GET", "/health/providers", headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET /health/providers: {response.status} {body[:200]!r}")
        providers = json.loads(body)["chains"][chain]["providers"]
        return providers[0]["retry_after_ms"]

    def wait_until_clear(chain: str) -> None:
        end = time.monotonic() + args.deadline
        while window(a, chain) is not None or window(b, chain) is not None:
            if time.monotonic() > end:
                raise SystemExit(f"{chain}: a window did not end within {args.deadline} s")
            time.sleep(0.01)

    delays = []
    lost = 0
    for sample in range(args.samples):
        chain = f"lim{sample % args.chains}"
        wait_until_clear(chain)
        body = json.dumps({"model": chain, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8})
        start = time.perf_counter()
        a.request("POST", "/v1/chat/completions", body=body, headers=headers)
        response = a.getresponse()
        response.read()
        # The backup's model is "bench" (x-llm-fallback-model names the model that answered).
        if response.status != 200 or response.getheader("x-llm-fallback-model") != "bench":
            raise SystemExit(f"{chain} on A: {response.status}, answered by {response.getheader('x-llm-fallback-model')}")
        end = start + args.deadline
        while True:
            if window(b, chain) is not None:
                delays.append(time.perf_counter() - start)
                break
            if time.perf_counter() > end:
                lost += 1
                break

    delays.sort()

    def percentile(p: float) -> float:
        return delays[min(len(delays) - 1, int(round(p * (len(delays) - 1))))] * 1000

    print(
        f"RESULT samples={len(delays)} lost={lost} p50_ms={percentile(0.5):.2f} p90_ms={percentile(0.9):.2f} "
        f"p99_ms={percentile(0.99):.2f} max_ms={delays[-1] * 1000:.2f} mean_ms={statistics.fmean(delays) * 1000:.2f}"
    )
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
