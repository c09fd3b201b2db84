-- wrk script for scripts/soak.sh: mixed chat and `stream: true` requests against the gateway, each answer checked.
--
-- Every request carries a marker of its own (`soak marker <thread>x<n><c|s>`); a healthy upstream answer's text is
-- answer_text(marker) (the same sentence as chaos_upstream.py's). response() checks each answer:
--   200 chat      the complete scripted text for a marker still outstanding on this thread, finish_reason "stop"
--   200 stream    SSE events whose deltas add up to the scripted text, then a finish_reason, then `data: [DONE]`
--                 last; or, at any point, an OpenAI error event as the last event and no [DONE] (the text so far
--                 a prefix of the scripted one)
--   otherwise     an honest status: 502, 503 (with Retry-After), 504 or 429 (with Retry-After), with an OpenAI
--                 error body ({"error":{"message":...,"type":...}}); a 400 only when it passes on the upstream's
--                 injected refusal (its message names "soak-injected-400")
-- Anything else is a violation, counted by kind, and the first ones per thread are written (status, headers, body)
-- to $SOAK_VIOLATIONS-<thread>.txt.
--
-- Pacing: each thread aims at SOAK_RATE / threads requests/s. delay() keeps, once a second (os.time()), the pause
-- that would give that rate with the latency measured over the last second: pause' = C/T - (C/achieved - pause),
-- C this thread's connections, T its target; each pause is drawn from 0..2*pause to keep connections out of step.
--
-- Environment: SOAK_KEY (client key), SOAK_CHAINS (comma-separated chain names), SOAK_STREAM_SHARE (0..1),
--   SOAK_RATE (total requests/s, 0: as fast as possible), SOAK_THREADS, SOAK_CONNS, SOAK_VIOLATIONS (path prefix),
--   SOAK_PATH (default /v1/chat/completions), SOAK_MARKER_PREFIX (letters before each marker).

local key = os.getenv("SOAK_KEY") or "soak-key"
local chains = {}
for name in string.gmatch(os.getenv("SOAK_CHAINS") or "default", "[^,]+") do chains[#chains + 1] = name end
local stream_share = tonumber(os.getenv("SOAK_STREAM_SHARE") or "0.5") or 0.5
local rate = tonumber(os.getenv("SOAK_RATE") or "0") or 0
local nthreads = tonumber(os.getenv("SOAK_THREADS") or "1") or 1
local nconns = tonumber(os.getenv("SOAK_CONNS") or "1") or 1
local violations_prefix = os.getenv("SOAK_VIOLATIONS") or "/tmp/soak-violations"
local path = os.getenv("SOAK_PATH") or "/v1/chat/completions"
local marker_prefix = os.getenv("SOAK_MARKER_PREFIX") or ""
local max_examples = 12

local threads = {}
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("tid", counter)
    threads[#threads + 1] = thread
end

-- The scripted answer (chaos_upstream.py's ANSWER).
local function answer_text(m)
    return "Soak answer " .. m .. ": the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. End " .. m .. "."
end

stats = {}
local outstanding = {}
local n = 0
local examples = 0
local vfile = nil
local headers_template = nil

-- pacing state
local target_per_thread = 0
local conns_per_thread = 1
local pause = 0
local tick = 0
local responses_at_tick = 0
local responses = 0

local function count(name, by)
    stats[name] = (stats[name] or 0) + (by or 1)
end

function init(args)
    math.randomseed(os.time() * 1000 + (tid or 0))
    headers_template = {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. key,
    }
    if rate > 0 then
        target_per_thread = rate / nthreads
        conns_per_thread = math.max(1, math.floor(nconns / nthreads))
        pause = conns_per_thread * 1000.0 / target_per_thread
    end
    tick = os.time()
end

function request()
    n = n + 1
    local streamed = math.random() < stream_share
    local marker = marker_prefix .. tostring(tid) .. "x" .. tostring(n) .. (streamed and "s" or "c")
    outstanding[marker] = true
    local chain = chains[math.random(#chains)]
    local body = '{"model":"' .. chain .. '","messages":[{"role":"system","content":"You are a soak test."},'
        .. '{"role":"user","content":"Reply with the scripted answer. soak marker ' .. marker .. '"}],"max_tokens":64'
        .. (streamed and ',"stream":true' or '') .. '}'
    if streamed then count("sent_stream") else count("sent_chat") end
    return wrk.format("POST", path, headers_template, body)
end

if rate > 0 then
    function delay()
        local now = os.time()
        if now ~= tick then
            local achieved = (responses - responses_at_tick) / (now - tick)
            if achieved > 0 then
                local cycle = conns_per_thread * 1000.0 / achieved -- pause + latency, ms
                local wanted = conns_per_thread * 1000.0 / target_per_thread
                local new_pause = wanted - (cycle - pause)
                if new_pause < 0 then new_pause = 0 end
                pause = (pause + new_pause) / 2
            end
            tick = now
            responses_at_tick = responses
        end
        return math.random(0, math.floor(2 * pause + 0.5))
    end
end

local function header(headers, name)
    local v = headers[name]
    if v then return v end
    for k, value in pairs(headers) do
        if string.lower(k) == name then return value end
    end
    return nil
end

local function violation(kind, status, headers, body, why, detail)
    count("violation")
    count("violation_" .. kind)
    count("reason " .. kind .. ": " .. why)
    if examples >= max_examples then return end
    examples = examples + 1
    if not vfile then vfile = io.open(violations_prefix .. "-" .. tostring(tid) .. ".txt", "a") end
    if not vfile then return end
    vfile:write("=== " .. kind .. ": " .. why .. (detail and (": " .. detail) or "") .. "\n")
    vfile:write("status " .. tostring(status) .. "\n")
    for k, v in pairs(headers) do vfile:write(k .. ": " .. string.sub(v, 1, 200) .. "\n") end
    vfile:write("body (" .. #body .. " bytes):\n" .. string.sub(body, 1, 4000) .. "\n\n")
    vfile:flush()
end

-- Whether body is an OpenAI error object (what the gateway sends as an error body or event).
local function is_error_object(s)
    return string.find(s, '^{"error":{"message":"') ~= nil and string.find(s, '"type":"[^"]+"') ~= nil
        and string.sub(s, -2) == "}}"
end

local function take_marker(m, status, headers, body)
    if not outstanding[m] then
        violation("unknown_marker", status, headers, body, "a marker not outstanding on this thread", m)
        return false
    end
    outstanding[m] = nil
    return true
end

local function check_chat(status, headers, body)
    local content = string.match(body, '"message":{"role":"assistant","content":"([^"\\]*)"')
    local m = content and string.match(content, "^Soak answer ([%w_-]+):")
    if not m then
        violation("truncated_chat", status, headers, body, "a 200 without the scripted answer")
        return
    end
    if not take_marker(m, status, headers, body) then return end
    if content ~= answer_text(m) then
        violation("truncated_chat", status, headers, body, "a 200 whose text is not the complete scripted answer")
        return
    end
    if not string.find(body, '"finish_reason":"stop"', 1, true) or string.sub(body, -1) ~= "}" then
        violation("truncated_chat", status, headers, body, "a 200 without finish_reason stop or not ending its JSON")
        return
    end
    if string.sub(m, -1) ~= "c" then
        violation("wrong_kind", status, headers, body, "a chat completion answering a stream request")
        return
    end
    count("chat_ok")
    local attempts = tonumber(header(headers, "x-llm-fallback-attempts") or "1") or 1
    if attempts > 1 then count("chat_ok_after_retry_or_failover") end
end

local function check_stream(status, headers, body)
    local text = {}
    local finished = false
    local done = false
    local errored = false
    local after_end = false
    local marker = nil
    local pos = 1
    local len = #body
    local events = 0
    while pos <= len do
        local stop = string.find(body, "\n\n", pos, true)
        if not stop then
            violation("truncated_stream", status, headers, body, "the body ends inside an event (no blank line)")
            return
        end
        local event = string.sub(body, pos, stop - 1)
        pos = stop + 2
        events = events + 1
        if done or errored then after_end = true end
        if string.sub(event, 1, 6) ~= "data: " then
            violation("bad_event", status, headers, body, "an event that is not a data line", string.sub(event, 1, 100))
            return
        end
        local data = string.sub(event, 7)
        if data == "[DONE]" then
            done = true
        elseif string.sub(data, 1, 9) == '{"error":' then
            if not is_error_object(data) then
                violation("bad_event", status, headers, body, "an error event that is not an OpenAI error object")
                return
            end
            errored = true
        else
            if string.find(data, '"usage":', 1, true) and string.find(data, '"choices":[]', 1, true) then
                -- the usage chunk
            else
                if not marker then marker = string.match(data, '"id":"chatcmpl%-soak%-([%w_-]+)"') end
                local piece = string.match(data, '"delta":{[^}]-"content":"([^"\\]*)"')
                if piece then
                    text[#text + 1] = piece
                elseif string.find(data, '"content":', 1, true) and not string.find(data, '"content":null', 1, true) then
                    violation("wrong_content", status, headers, body, "a chunk whose content could not be read", string.sub(data, 1, 200))
                    return
                end
                if string.find(data, '"finish_reason":"', 1, true) then finished = true end
            end
        end
    end
    if after_end then
        violation("truncated_stream", status, headers, body, "events after [DONE] or after an error event")
        return
    end
    local got = table.concat(text)
    local m = string.match(got, "^Soak answer ([%w_-]+):") or marker
    if m then
        if not take_marker(m, status, headers, body) then return end
        if string.sub(m, -1) ~= "s" then
            violation("wrong_kind", status, headers, body, "a stream answering a chat request")
            return
        end
    end
    local expected = m and answer_text(m) or nil
    if errored then
        if done then
            violation("truncated_stream", status, headers, body, "both an error event and [DONE]")
            return
        end
        -- What was sent before the error must be a prefix of the scripted answer (possibly empty).
        if #got > 0 and (not expected or string.sub(expected, 1, #got) ~= got) then
            violation("wrong_content", status, headers, body, "the text before the error event is not a prefix of the scripted answer")
            return
        end
        if expected and got == expected then
            count("stream_error_after_full_text")
        elseif #got > 0 then
            count("stream_error_after_some_text")
        else
            count("stream_error_before_text")
        end
        return
    end
    if not done then
        violation("truncated_stream", status, headers, body, "a stream that ends with neither [DONE] nor an error event")
        return
    end
    if not finished then
        violation("truncated_stream", status, headers, body, "[DONE] without a finish_reason")
        return
    end
    if not expected or got ~= expected then
        violation("truncated_stream", status, headers, body, "[DONE] after a text that is not the complete scripted answer")
        return
    end
    count("stream_ok")
    local attempts = tonumber(header(headers, "x-llm-fallback-attempts") or "1") or 1
    if attempts > 1 then count("stream_ok_after_retry_or_failover") end
end

local honest = { [429] = true, [502] = true, [503] = true, [504] = true, [400] = true }

local function check_error(status, headers, body)
    if not honest[status] then
        violation("dishonest_status", status, headers, body, "a status the soak does not allow", tostring(status))
        return
    end
    if not is_error_object(body) then
        violation("dishonest_status", status, headers, body, "an error status without an OpenAI error body")
        return
    end
    if status == 400 and not string.find(body, "soak-injected-400", 1, true) then
        violation("dishonest_status", status, headers, body, "a 400 that is not the upstream's injected refusal")
        return
    end
    if status == 429 or status == 503 then
        local ra = tonumber(header(headers, "retry-after") or "")
        if not ra or ra < 1 or ra > 86400 or ra ~= math.floor(ra) then
            violation("dishonest_status", status, headers, body, "a 429 or 503 without a Retry-After of 1..86400 s")
            return
        end
    end
    local code = string.match(body, '"code":"([%w_]+)"') or "null"
    count("error_" .. status .. "_" .. code)
end

function response(status, headers, body)
    responses = responses + 1
    count("status_" .. status)
    if status == 200 then
        local ctype = header(headers, "content-type") or ""
        if string.find(ctype, "text/event-stream", 1, true) then
            check_stream(status, headers, body)
        else
            check_chat(status, headers, body)
        end
    else
        check_error(status, headers, body)
    end
end

function done(summary, latency, requests)
    local total = {}
    for _, thread in ipairs(threads) do
        local s = thread:get("stats")
        for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
    end
    local e = summary.errors
    io.write(string.format("RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d connect=%d read=%d write=%d timeout=%d\n",
        summary.requests, summary.duration, summary.requests / (summary.duration / 1e6), latency:percentile(50),
        latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout))
    local keys = {}
    for k in pairs(total) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do io.write(string.format("COUNT %s=%d\n", k, total[k])) end
end
