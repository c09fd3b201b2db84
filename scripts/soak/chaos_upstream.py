#!/usr/bin/env python3
"""A chaos upstream for scripts/soak.sh: an OpenAI-compatible chat completions server (standard library only, raw
asyncio streams) that answers each request with a fault drawn at random from a catalogue, or with a healthy answer
whose text is known in advance, so that the client side can tell a complete answer from a truncated one.

POST <prefix>/v1/chat/completions, where <prefix> names a profile (the fault weights, see PROFILES):
    /chaos/v1/...    every fault of the catalogue at random; healthy most of the time
    /absurd/v1/...   the chaos profile plus 429s whose Retry-After is absurdly long (1e30, 10^20, a day)
    /healthy/v1/...  always a healthy answer (for measuring the upstream's own capacity)
    /only-FAULT/v1/... always that fault (e.g. /only-done_early/v1): to reproduce a finding
A request without a profile prefix uses "chaos".

The healthy answer's text is fixed apart from the request's marker, taken from the last user message
(`soak marker <M>`):  answer_text(M) below, the same function the wrk script (soak.lua) checks against.

GET /stats          counters (requests, faults drawn, open connections, down state) as JSON
GET /v1/models      liveness
POST /control/down?mode=refuse|503&seconds=N
                    the provider is down for N seconds: "refuse" closes the listening socket and every open
                    connection (connections are refused until it reopens), "503" answers every request 503
POST /control/up    ends a down period now
POST /control/reset zeroes the counters

Each request drawn is logged (buffered) to --log as `time marker profile fault`, so a bad answer seen by the
client can be traced to the faults its attempts met.

Usage: chaos_upstream.py --port PORT [--seed N] [--log FILE] [--name NAME] [--disable FAULT,...]
"""

import argparse
import asyncio
import json
import random
import re
import signal
import socket
import struct
import sys
import time

# --------------------------------------------------------------------------------------------------------------
# The scripted answer (soak.lua builds the same text)

ANSWER = "Soak answer {m}: the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. End {m}."


def answer_text(marker):
    return ANSWER.format(m=marker)


# --------------------------------------------------------------------------------------------------------------
# The catalogue. Each fault is (name, weight); weights are relative within a profile. The "ok..." faults are
# healthy answers (some with absurd but legal headers, or slow): through the gateway they must arrive complete.

CHAOS = [
    ("ok", 640),
    ("ok_slow", 20),  # a stream with 50-300 ms between chunks (under the stall limit), a chat after 50-300 ms
    ("ok_big_header", 10),  # a 40 KB header value (under the client's 80 KB limit)
    ("ok_many_headers", 10),  # 500 headers (under the client's 1,000)
    ("ok_retry_after_junk", 5),  # a healthy answer that also carries junk retry-after headers
    ("status_429", 8),  # Retry-After: one of RETRY_AFTER_SANE (short, negative, garbage, missing)
    ("status_500", 12),
    ("status_502", 10),
    ("status_503", 10),
    ("status_400", 6),  # the request refused: the gateway must pass the refusal on (400, its reason)
    ("status_401", 4),
    ("status_html", 6),  # 502/503 with an HTML body, as a load balancer would answer
    ("hang", 10),  # reads the request, never answers (until the client goes)
    ("hang_headers", 5),  # sends the response head, then nothing
    ("reset", 12),  # closes with a TCP reset once the request is read
    ("reset_mid_head", 5),  # half a response head, then a reset
    ("close", 8),  # closes cleanly (FIN) without answering
    ("garbage_status_line", 5),  # not HTTP at all
    ("garbage_body", 8),  # 200 application/json, bytes that are not JSON
    ("truncated_json", 10),  # 200, the JSON answer cut at a random byte (Content-Length matches the cut)
    ("short_body", 6),  # 200, Content-Length longer than what is sent, then the connection closes
    ("wrong_shape", 5),  # 200, JSON but not a chat completion (no choices, choices of the wrong type, ...)
    ("empty_200", 4),  # 200, empty body
    ("huge_header", 4),  # a 200 head with a 200 KB header value (over the client's limit)
    ("many_headers", 4),  # a 200 head with 3,000 headers (over the client's limit)
    ("oversize", 0.25),  # a body (or stream) over the gateway's 32 MiB response limit
    ("flood", 0.25),  # (stream) 17 MiB without a newline; (chat) a 200 chunked body of 33 MiB
    # Stream-only faults (a chat request that draws one gets a healthy answer instead: see STREAM_ONLY).
    ("cut", 14),  # the stream stops after k chunks: connection closed without the last chunk
    ("cut_clean", 10),  # the stream stops after k chunks with a clean end of body, no finish_reason nor [DONE]
    ("cut_reset", 8),  # after k chunks, a TCP reset
    ("stall", 8),  # after k chunks, silence (until the client goes)
    ("garbage_event", 8),  # after k chunks, an event whose data is not JSON
    ("truncated_event", 8),  # after k chunks, an event whose JSON is cut
    ("error_event", 8),  # after k chunks, an OpenAI-style error event, then the end of the body
    ("done_early", 5),  # after k chunks, [DONE] without a finish_reason
]
STREAM_ONLY = {"cut", "cut_clean", "cut_reset", "stall", "garbage_event", "truncated_event", "error_event", "done_early"}

ABSURD = CHAOS + [("status_429_absurd", 10)]  # Retry-After: one of RETRY_AFTER_ABSURD

PROFILES = {
    "chaos": CHAOS,
    "absurd": ABSURD,
    "healthy": [("ok", 1)],
}

# Retry-After values a provider might send: legal, negative, garbage, absurd.
# A Retry-After benches the provider for every request until it passes (the library's rule), so the values every
# profile sends are short; the long and absurd ones go to the "absurd" profile only (one chain's primary).
RETRY_AFTER_SANE = [None, "0", "1", "-5", "garbage", "1.5", "NaN", "-1e30", "Wed, 21 Oct 2015 07:28:00 GMT", "", "  2  ",
                    "1; rm -rf /", "+1", "0.001"]
RETRY_AFTER_ABSURD = ["1e30", "100000000000000000000", "86400", "9223372036854775808", "1e19", "inf", "0x10", "0x1p20"]
RETRY_AFTER_MS_SANE = [None, "100", "-5", "abc", "1e3"]


class Profile:
    def __init__(self, faults, disabled=()):
        faults = [(name, weight) for name, weight in faults if name not in disabled]
        self.names = [name for name, _ in faults]
        self.cum = []
        total = 0
        for _, weight in faults:
            total += weight
            self.cum.append(total)
        self.total = total

    def draw(self, rng):
        x = rng.random() * self.total
        lo, hi = 0, len(self.cum) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.cum[mid] > x:
                hi = mid
            else:
                lo = mid + 1
        return self.names[lo]


PROFILE_OBJECTS = {name: Profile(faults) for name, faults in PROFILES.items()}
ALL_FAULTS = {name for name, _ in ABSURD}


def disable(names):
    """Leaves faults out of every profile (--disable), e.g. to look past a known finding."""
    unknown = [n for n in names if n not in {name for name, _ in ABSURD}]
    if unknown:
        raise SystemExit(f"unknown faults: {', '.join(unknown)}")
    for name, faults in PROFILES.items():
        PROFILE_OBJECTS[name] = Profile(faults, set(names))

# --------------------------------------------------------------------------------------------------------------
# Bodies

MARKER_RE = re.compile(rb"soak marker ([A-Za-z0-9_-]{1,64})")
STREAM_RE = re.compile(rb'"stream"\s*:\s*true')


def completion(marker, model):
    """The healthy chat.completion (built by hand: json.dumps costs more than the rest of a request)."""
    m = marker.encode()
    return (b'{"id":"chatcmpl-soak-' + m + b'","object":"chat.completion","created":' + str(int(time.time())).encode()
            + b',"model":"' + model.encode() + b'","choices":[{"index":0,"message":{"role":"assistant","content":"'
            + answer_text(marker).encode() + b'"},"logprobs":null,"finish_reason":"stop"}],'
            + b'"usage":{"prompt_tokens":12,"completion_tokens":24,"total_tokens":36}}')


def stream_events(marker, model, rng):
    """The healthy stream as a list of SSE events (bytes): role, content pieces, finish, usage, [DONE].

    The text is ASCII without quotes or backslashes, so the events are put together without a JSON encoder."""
    text = answer_text(marker).encode()
    size = len(text)
    cuts = sorted({int(rng.random() * (size - 1)) + 1 for _ in range(2 + int(rng.random() * 8))})
    head_ = (b'data: {"id":"chatcmpl-soak-' + marker.encode() + b'","object":"chat.completion.chunk","created":'
             + str(int(time.time())).encode() + b',"model":"' + model.encode() + b'","choices":[')
    tail_ = b',"logprobs":null,"finish_reason":null}]}\n\n'
    events = [head_ + b'{"index":0,"delta":{"role":"assistant","content":""}' + tail_]
    previous = 0
    for cut in cuts + [size]:
        events.append(head_ + b'{"index":0,"delta":{"content":"' + text[previous:cut] + b'"}' + tail_)
        previous = cut
    events.append(head_ + b'{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n')
    events.append(head_ + b'],"usage":{"prompt_tokens":12,"completion_tokens":24,"total_tokens":36}}\n\n')
    events.append(b"data: [DONE]\n\n")
    return events


def http_chunk(payload):
    return b"%x\r\n%s\r\n" % (len(payload), payload)


REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable"}


def head(status, headers, keep_alive=True):
    lines = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status").encode())]
    for key, value in headers:
        lines.append(key.encode() + b": " + value.encode("latin-1"))
    if not keep_alive:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def json_response(status, body, extra=(), keep_alive=True):
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    headers.extend(extra)
    return head(status, headers, keep_alive) + body


def error_body(message, type_, code=None):
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}},
                      separators=(",", ":")).encode()


_big = {}


def big(name):
    """Large bodies, made once."""
    if name not in _big:
        if name == "oversize_json":
            # Valid JSON (a completion whose content is padding) of 33 MiB: over the gateway's 32 MiB limit.
            pad = "x" * (33 << 20)
            _big[name] = ('{"id":"chatcmpl-big","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,'
                          '"message":{"role":"assistant","content":"' + pad + '"},"finish_reason":"stop"}]}').encode()
        elif name == "flood":
            _big[name] = b"data: " + b"y" * (17 << 20)
        elif name == "pad_event":
            _big[name] = b": " + b"z" * ((1 << 20) - 4) + b"\n\n"  # an SSE comment of 1 MiB
    return _big[name]


# --------------------------------------------------------------------------------------------------------------
# The server


class Hang(Exception):
    """Wait for the peer to go, then close."""


class Upstream:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.stats = {"requests": 0, "connections": 0, "open_connections": 0, "faults": {}, "down": None,
                      "down_periods": 0, "refused_while_down": 0, "started": time.time()}
        self.server = None
        self.writers = set()
        self.down_mode = None
        self.down_until = 0.0
        self.down_task = None
        self.log = open(args.log, "w", buffering=1 << 20) if args.log else None

    # -- control

    async def start_listening(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", self.args.port, limit=1 << 20,
                                                 reuse_address=True, backlog=4096)

    def go_down(self, mode, seconds):
        self.down_mode = mode
        self.down_until = time.time() + seconds
        self.stats["down"] = mode
        self.stats["down_periods"] += 1
        if mode == "refuse" and self.server is not None:
            self.server.close()
            self.server = None
            for writer in list(self.writers):
                abort(writer)
        if self.down_task:
            self.down_task.cancel()
        self.down_task = asyncio.get_running_loop().create_task(self.come_up_later(seconds))

    async def come_up_later(self, seconds):
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            return
        await self.come_up()

    async def come_up(self):
        was = self.down_mode
        self.down_mode = None
        self.stats["down"] = None
        if was == "refuse" and self.server is None:
            for _ in range(50):
                try:
                    await self.start_listening()
                    break
                except OSError:
                    await asyncio.sleep(0.1)

    # -- connections

    async def handle(self, reader, writer):
        self.stats["connections"] += 1
        self.stats["open_connections"] += 1
        self.writers.add(writer)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        try:
            while True:
                try:
                    request_head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                method, path, length = parse_head(request_head)
                body = await reader.readexactly(length) if length else b""
                keep_open = await self.respond(method, path, body, reader, writer)
                if not keep_open:
                    return
        except Hang:
            await wait_until_closed(reader)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self.stats["open_connections"] -= 1
            self.writers.discard(writer)
            try:
                writer.close()
            except Exception:
                pass

    async def respond(self, method, path, body, reader, writer):
        """Answers one request; returns whether the connection stays open for the next one."""
        if method == "GET":
            if path.startswith("/stats"):
                payload = json.dumps(self.stats).encode()
            else:
                payload = b'{"object":"list","data":[{"id":"soak","object":"model"}]}'
            writer.write(json_response(200, payload))
            return True
        if path.startswith("/control/"):
            query = dict(part.split("=", 1) for part in path.partition("?")[2].split("&") if "=" in part)
            if path.startswith("/control/down"):
                writer.write(json_response(200, b'{"ok":true}', keep_alive=False))
                await writer.drain()
                self.go_down(query.get("mode", "503"), float(query.get("seconds", "60")))
                return False
            if path.startswith("/control/reset"):
                self.stats.update(requests=0, faults={}, down_periods=0, refused_while_down=0, started=time.time())
                writer.write(json_response(200, b'{"ok":true}'))
                return True
            if self.down_task:
                self.down_task.cancel()
            await self.come_up()
            writer.write(json_response(200, b'{"ok":true}'))
            return True

        self.stats["requests"] += 1
        if self.down_mode is not None:
            self.stats["refused_while_down"] += 1
            writer.write(json_response(503, error_body("the provider is down (soak outage)", "server_error", "down")))
            return True

        rest = path[1:]
        profile_name = rest.split("/", 1)[0]
        match = MARKER_RE.search(body)
        marker = match.group(1).decode() if match else "none"
        streamed = STREAM_RE.search(body) is not None
        rng = self.rng
        if profile_name.startswith("only-") and profile_name[5:] in ALL_FAULTS:
            fault = profile_name[5:]  # one fault, every time: for reproducing a finding
        else:
            profile = PROFILE_OBJECTS.get(profile_name) or PROFILE_OBJECTS["chaos"]
            fault = profile.draw(rng)
        if fault in STREAM_ONLY and not streamed:
            fault = "ok"
        faults = self.stats["faults"]
        key = ("s:" if streamed else "c:") + fault
        faults[key] = faults.get(key, 0) + 1
        if self.log:
            self.log.write("%.3f %s %s %s\n" % (time.time(), marker, profile_name, key))
        return await self.act(fault, streamed, marker, reader, writer)

    async def act(self, fault, streamed, marker, reader, writer):
        rng = self.rng
        model = "soak-model"
        if fault.startswith("ok"):
            extra = []
            if fault == "ok_big_header":
                extra.append(("X-Big", "b" * (40 * 1024)))
            elif fault == "ok_many_headers":
                extra.extend(("X-Many-%d" % i, "v") for i in range(500))
            elif fault == "ok_retry_after_junk":
                extra.extend([("Retry-After", "1e30"), ("retry-after-ms", "-5"), ("x-ratelimit-reset", "garbage")])
            slow = fault == "ok_slow"
            if not streamed:
                if slow:
                    await asyncio.sleep(rng.uniform(0.05, 0.3))
                writer.write(json_response(200, completion(marker, model), extra))
                return True
            events = stream_events(marker, model, rng)
            writer.write(head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")] + extra))
            await self.write_events(writer, events, slow)
            writer.write(b"0\r\n\r\n")
            return True

        if fault.startswith("status_"):
            return self.status_fault(fault, writer)

        if fault in ("hang",):
            raise Hang()
        if fault == "hang_headers":
            if streamed:
                writer.write(head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
            else:
                writer.write(head(200, [("Content-Type", "application/json"), ("Content-Length", "1000")]))
            raise Hang()
        if fault == "reset":
            abort(writer)
            return False
        if fault == "reset_mid_head":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: applica")
            await writer.drain()
            abort(writer)
            return False
        if fault == "close":
            return False
        if fault == "garbage_status_line":
            writer.write(rng.choice([b"SSH-2.0-OpenSSH_9.6\r\n", b"HTTP/1.1 2OO OK\r\n\r\n", b"\x00\xff\xfe garbage\r\n\r\n",
                                     b"HTTP/9.9 999999999999 Huh\r\nContent-Length: 2\r\n\r\n{}"]))
            return False
        if fault == "garbage_body":
            body = rng.choice([b"<html><body>502 Bad Gateway</body></html>", b"\xff\xfe\x00\x01 binary", b"not json at all",
                               b"{\"choices\":[{\"message\":{\"content\":\"" + b"\xc3\x28" + b"\"}}]}", b"null", b"[1,2,3]"])
            writer.write(json_response(200, body))
            return True
        if fault == "truncated_json":
            body = completion(marker, model)
            cut = rng.randint(1, len(body) - 1)
            writer.write(json_response(200, body[:cut]))
            return True
        if fault == "short_body":
            body = completion(marker, model)
            cut = rng.randint(0, len(body) - 1)
            writer.write(head(200, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]) + body[:cut])
            await writer.drain()
            return False
        if fault == "wrong_shape":
            body = rng.choice([b'{"object":"chat.completion"}', b'{"choices":"nope"}', b'{"choices":[]}',
                               b'{"choices":[{"message":{"content":12345}}]}', b'{"choices":[{"message":null}]}',
                               b'{"error":"looks like an error but is a 200"}'])
            writer.write(json_response(200, body))
            return True
        if fault == "empty_200":
            writer.write(json_response(200, b""))
            return True
        if fault == "huge_header":
            writer.write(head(200, [("Content-Type", "application/json"), ("X-Huge", "h" * (200 * 1024)),
                                    ("Content-Length", "2")]) + b"{}")
            await writer.drain()
            return False
        if fault == "many_headers":
            writer.write(head(200, [("Content-Type", "application/json")] + [("X-H%d" % i, "v") for i in range(3000)]
                              + [("Content-Length", "2")]) + b"{}")
            await writer.drain()
            return False
        if fault == "oversize":
            if streamed:
                writer.write(head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
                events = stream_events(marker, model, rng)
                writer.write(http_chunk(events[0]))
                pad = http_chunk(big("pad_event"))
                for _ in range(34):
                    writer.write(pad)
                    await writer.drain()
                await self.write_events(writer, events[1:], False)
                writer.write(b"0\r\n\r\n")
            else:
                body = big("oversize_json")
                writer.write(json_response(200, body))
            await writer.drain()
            return False
        if fault == "flood":
            if streamed:
                writer.write(head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
                writer.write(http_chunk(big("flood")))
            else:
                writer.write(head(200, [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]))
                piece = http_chunk(b"w" * (1 << 20))
                for _ in range(34):
                    writer.write(piece)
                    await writer.drain()
            await writer.drain()
            return False

        # Stream faults: k healthy events first (k may be 0 or reach the whole content).
        events = stream_events(marker, model, rng)
        content_events = len(events) - 3  # role + pieces (before finish, usage, [DONE])
        k = rng.randint(0, content_events)
        writer.write(head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
        await self.write_events(writer, events[:k], False)
        if fault == "cut":
            await writer.drain()
            return False
        if fault == "cut_clean":
            writer.write(b"0\r\n\r\n")
            return True
        if fault == "cut_reset":
            await writer.drain()
            abort(writer)
            return False
        if fault == "stall":
            await writer.drain()
            raise Hang()
        if fault == "garbage_event":
            writer.write(http_chunk(rng.choice([b"data: <html>oops</html>\n\n", b"data: {not json}\n\n",
                                                b"data: \xff\xfe\n\n", b"event: error\ndata: 42\n\n"])))
        elif fault == "truncated_event":
            full = events[min(k, content_events - 1)]
            writer.write(http_chunk(full[: rng.randint(8, len(full) - 4)] + b"\n\n"))
        elif fault == "error_event":
            writer.write(http_chunk(b"data: " + error_body("The server had an error while processing your request.",
                                                          "server_error") + b"\n\n"))
        elif fault == "done_early":
            writer.write(http_chunk(b"data: [DONE]\n\n"))
        writer.write(b"0\r\n\r\n")
        return True

    def status_fault(self, fault, writer):
        rng = self.rng
        if fault == "status_429" or fault == "status_429_absurd":
            extra = []
            value = rng.choice(RETRY_AFTER_ABSURD if fault == "status_429_absurd" else RETRY_AFTER_SANE)
            if value is not None:
                extra.append(("Retry-After", value))
            ms = rng.choice(RETRY_AFTER_MS_SANE)
            if ms is not None and fault == "status_429":
                extra.append(("retry-after-ms", ms))
            writer.write(json_response(429, error_body("Rate limit reached (soak)", "requests", "rate_limit_exceeded"), extra))
        elif fault == "status_400":
            writer.write(json_response(400, error_body("soak-injected-400: the request was refused", "invalid_request_error",
                                                       "soak_injected")))
        elif fault == "status_401":
            writer.write(json_response(401, error_body("Incorrect API key provided (soak)", "invalid_request_error",
                                                       "invalid_api_key")))
        elif fault == "status_html":
            body = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            writer.write(head(rng.choice([502, 503]), [("Content-Type", "text/html"), ("Content-Length", str(len(body)))]) + body)
        else:
            status = int(fault[len("status_"):])
            writer.write(json_response(status, error_body("The server had an error (soak %d)" % status, "server_error")))
        return True

    async def write_events(self, writer, events, slow):
        rng = self.rng
        if not slow:
            # Two or three writes, as a real server flushes as it goes.
            split = rng.randint(0, len(events))
            if split:
                writer.write(b"".join(http_chunk(e) for e in events[:split]))
                await writer.drain()
            if split < len(events):
                writer.write(b"".join(http_chunk(e) for e in events[split:]))
            return
        for event in events:
            writer.write(http_chunk(event))
            await writer.drain()
            await asyncio.sleep(rng.uniform(0.05, 0.3))


def parse_head(data):
    end = data.index(b"\r\n")
    parts = data[:end].split(b" ")
    method = parts[0].decode("latin-1")
    path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
    length = 0
    lower = data.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = lower.index(b"\r\n", at + 2)
        length = int(lower[at + 17:stop].strip() or b"0")
    return method, path, length


def abort(writer):
    """Closes with a TCP reset (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    except Exception:
        pass


async def wait_until_closed(reader):
    try:
        while await reader.read(65536):
            pass
    except Exception:
        pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log", default="")
    parser.add_argument("--name", default="upstream")
    parser.add_argument("--disable", default="", help="comma-separated faults to leave out")
    args = parser.parse_args()
    if args.disable:
        disable([n for n in args.disable.split(",") if n])
    upstream = Upstream(args)
    await upstream.start_listening()
    print(f"{args.name}: listening on 127.0.0.1:{args.port}, seed {args.seed}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if upstream.log:
        upstream.log.close()
    print(json.dumps(upstream.stats), flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
