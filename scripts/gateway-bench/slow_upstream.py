#!/usr/bin/env python3
"""A slowly streaming OpenAI-compatible upstream for scripts/gateway-bench.sh (standard library only).

POST /v1/chat/completions with "stream": true is answered with Server-Sent Events: a first chunk (the assistant
role) at once, then one content chunk every --interval seconds for --total seconds, then the finish chunk and
[DONE]. Without "stream" it answers at once. GET /stats tells how many streams are open now, how many were
started, and how many ended because the client went away (a gateway that cancels upstream requests when its own
client disconnects drives "open" back to 0).

Usage: slow_upstream.py --port PORT [--interval 1.0] [--total 600]
"""

import argparse
import asyncio
import json
import time

stats = {"open": 0, "started": 0, "completed": 0, "client_gone": 0, "max_open": 0}


def chunk(model, delta, finish=None):
    return {
        "id": "chatcmpl-slow",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def sse(obj) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return http_chunk(b"data: " + data.encode() + b"\n\n")


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    return method, path, headers, body


def respond(writer, status, body: bytes, content_type="application/json"):
    reason = {200: "OK", 404: "Not Found"}.get(status, "Status")
    writer.write(
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
        % (status, reason.encode(), content_type.encode(), len(body), body)
    )


async def stream(writer, model, interval, total):
    stats["open"] += 1
    stats["started"] += 1
    stats["max_open"] = max(stats["max_open"], stats["open"])
    try:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        writer.write(sse(chunk(model, {"role": "assistant", "content": ""})))
        await writer.drain()
        deadline = time.monotonic() + total
        n = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(interval)
            n += 1
            writer.write(sse(chunk(model, {"content": f"tick {n} "})))
            await writer.drain()
        writer.write(sse(chunk(model, {}, "stop")))
        writer.write(sse("[DONE]"))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        stats["completed"] += 1
        return True
    except ConnectionError:
        stats["client_gone"] += 1
        return False
    finally:
        stats["open"] -= 1


async def handle(reader, writer, args):
    try:
        while True:
            try:
                method, path, headers, body = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if method == "GET" and path == "/stats":
                respond(writer, 200, json.dumps(stats).encode())
            elif method == "POST" and path.endswith("/chat/completions"):
                try:
                    request = json.loads(body or b"{}")
                except ValueError:
                    request = {}
                model = request.get("model") or "slow"
                if request.get("stream"):
                    if not await stream(writer, model, args.interval, args.total):
                        return
                else:
                    answer = {
                        "id": "chatcmpl-slow",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                    respond(writer, 200, json.dumps(answer).encode())
            else:
                respond(writer, 404, b'{"error":{"message":"not found","type":"invalid_request_error"}}')
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    except ConnectionError:
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--total", type=float, default=600.0)
    args = parser.parse_args()
    server = await asyncio.start_server(lambda r, w: handle(r, w, args), args.host, args.port, backlog=4096)
    print(f"slow upstream on {args.host}:{args.port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
