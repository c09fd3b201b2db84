-- wrk script for scripts/gateway-bench.sh: POSTs one OpenAI chat request and prints exact percentiles.
--
-- Environment:
--   BENCH_MODEL     the request's "model" (default "bench")
--   BENCH_FORMAT    "anthropic" for an Anthropic Messages body and headers; otherwise OpenAI's
--   BENCH_DELAY_MS  when > 0, each connection waits a random 0..2*BENCH_DELAY_MS ms (mean BENCH_DELAY_MS) after a
--                   response before its next request: a paced load whose rate is about
--                   connections / (BENCH_DELAY_MS + latency); the random wait keeps connections out of step.
local model = os.getenv("BENCH_MODEL") or "bench"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if os.getenv("BENCH_FORMAT") == "anthropic" then
    -- BENCH_FORMAT=anthropic: an Anthropic Messages request, as the anthropic SDKs send it.
    wrk.headers["x-api-key"] = os.getenv("BENCH_KEY") or "test"
    wrk.headers["anthropic-version"] = "2023-06-01"
    wrk.body = '{"model":"' .. model .. '","system":"You are a helpful assistant.",'
        .. '"messages":[{"role":"user","content":"Say hello."}],"max_tokens":32,"temperature":0.2}'
else
    wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "test")
    wrk.body = '{"model":"' .. model .. '","messages":[{"role":"system","content":"You are a helpful assistant."},'
        .. '{"role":"user","content":"Say hello."}],"max_tokens":32,"temperature":0.2}'
end

if delay_ms > 0 then
    local span = math.floor(2 * delay_ms + 0.5)
    function init(args)
        math.randomseed(os.time() + math.floor(os.clock() * 1000000))
    end
    function delay()
        return math.random(0, span)
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f "
            .. "connect=%d read=%d write=%d status=%d timeout=%d\n",
        summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
        e.connect, e.read, e.write, e.status, e.timeout))
end
