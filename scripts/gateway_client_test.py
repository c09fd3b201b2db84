#!/usr/bin/env python3
"""Drives a running llm-fallback gateway with the official `openai` Python package.

Run by the gateway's Swift integration tests (Tests/LLMFallbackGatewayTests), which start MockLLMServer and the
gateway and pass the base URL. Expects these chains, as the Swift test sets them up:

  default    answers "Hello from model-primary" (mock default), streamed word by word
  failover   its first provider fails with 500; the backup ("model-backup") answers
  midstream  its only provider cuts the stream after one chunk
  tools      answers with a get_weather tool call
  fidelity   answers a completion with logprobs and a system_fingerprint (the Swift test checks what reached it)
  rescue     its primary cuts "The quick brown fox jumps over the lazy dog" after three words; a provider that
             takes a prefill finishes it
  rescue_tools    its primary cuts a get_weather tool call mid-arguments (never continued)
  rescue_refused  its primary cuts the answer; the next provider refuses the prefill with a 400

Exits 0 when every check passed; prints one line per check and a closing "N passed, N failed" line.
"""

import argparse
import sys

import openai


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="the gateway's OpenAI base URL, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--api-key", default="unused", help="the gateway key (Authorization: Bearer)")
    args = parser.parse_args()

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=30)
    results = []

    def check(name, condition, detail=""):
        results.append(bool(condition))
        print(("ok   " if condition else "FAIL ") + name + ("" if condition else f": {detail}"), flush=True)

    def run(name, body):
        try:
            body()
        except Exception as error:  # noqa: BLE001 - report any failure as a failed check
            check(name, False, f"{type(error).__name__}: {error}")

    messages = [{"role": "user", "content": "Say hello"}]

    def chat():
        response = client.chat.completions.create(model="default", messages=messages)
        check("chat: content", response.choices[0].message.content == "Hello from model-primary", response)
        check("chat: model is the answering model", response.model == "model-primary", response.model)
        check("chat: finish_reason", response.choices[0].finish_reason == "stop", response.choices[0].finish_reason)
        check("chat: usage", response.usage is not None and response.usage.total_tokens > 0, response.usage)
        check("chat: object", response.object == "chat.completion", response.object)

    def stream():
        chunks = list(client.chat.completions.create(model="default", messages=messages, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        check("stream: text", text == "Hello from model-primary", text)
        check("stream: role in first delta", chunks[0].choices[0].delta.role == "assistant", chunks[0])
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        check("stream: finish_reason", finishes == ["stop"], finishes)
        check("stream: no usage unless asked", all(c.usage is None for c in chunks), chunks[-1])

    def include_usage():
        chunks = list(
            client.chat.completions.create(
                model="default", messages=messages, stream=True, stream_options={"include_usage": True}
            )
        )
        last = chunks[-1]
        check("include_usage: last chunk has no choices", last.choices == [], last)
        check("include_usage: usage", last.usage is not None and last.usage.completion_tokens > 0, last.usage)

    def failover():
        raw = client.chat.completions.with_raw_response.create(model="failover", messages=messages)
        response = raw.parse()
        check("failover: answered by the backup model", response.model == "model-backup", response.model)
        check("failover: provider header", raw.headers.get("x-llm-fallback-provider") == "backup", dict(raw.headers))
        check("failover: attempts header", raw.headers.get("x-llm-fallback-attempts") == "2", dict(raw.headers))
        with client.chat.completions.with_streaming_response.create(
            model="failover", messages=messages, stream=True
        ) as streamed:
            check("failover stream: provider header", streamed.headers.get("x-llm-fallback-model") == "model-backup",
                  dict(streamed.headers))
            text = "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices)
            check("failover stream: text from the backup", text == "Hello from model-backup", text)

    def tools():
        tool = {
            "type": "function",
            "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
        }
        response = client.chat.completions.create(model="tools", messages=messages, tools=[tool])
        calls = response.choices[0].message.tool_calls or []
        check("tools: one call", len(calls) == 1 and calls[0].function.name == "get_weather", response)
        check("tools: arguments", calls and calls[0].function.arguments == '{"city":"Paris"}', calls)
        chunks = list(client.chat.completions.create(model="tools", messages=messages, tools=[tool], stream=True))
        arguments = "".join(
            call.function.arguments or ""
            for c in chunks if c.choices and c.choices[0].delta.tool_calls
            for call in c.choices[0].delta.tool_calls
        )
        check("tools stream: arguments", arguments == '{"city":"Paris"}', arguments)

    def fidelity():
        schema = {"type": "object", "properties": {"zeta": {"type": "string"}, "alpha": {"type": "integer"}}}
        response = client.chat.completions.create(
            model="fidelity", messages=messages, reasoning_effort="high", logprobs=True, top_logprobs=2,
            frequency_penalty=0.5, metadata={"k": "v"}, store=True,
            response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
            extra_body={"a_field_of_the_future": {"z": 1, "a": 2}},
        )
        check("fidelity: system_fingerprint relayed", response.system_fingerprint == "fp_44", response)
        logprobs = response.choices[0].logprobs
        check("fidelity: logprobs relayed", logprobs is not None and logprobs.content[0].token == "Hi", logprobs)

    def errors():
        try:
            client.chat.completions.create(model="no-such-chain", messages=messages)
            check("unknown chain: NotFoundError", False, "no error")
        except openai.NotFoundError as error:
            check("unknown chain: NotFoundError", error.status_code == 404, error)
        try:
            client.chat.completions.create(model="default", messages=[])
            check("empty messages: BadRequestError", False, "no error")
        except openai.BadRequestError as error:
            check("empty messages: BadRequestError", error.status_code == 400, error)
        received = []
        try:
            for chunk in client.chat.completions.create(model="midstream", messages=messages, stream=True):
                received.append(chunk)
            check("error mid-stream: raised", False, "the stream ended cleanly")
        except openai.APIError as error:
            check("error mid-stream: raised", len(received) >= 1, f"{len(received)} chunks before {error}")

    answer = "The quick brown fox jumps over the lazy dog"

    def rescue():
        chunks = list(client.chat.completions.create(model="rescue", messages=messages, stream=True,
                                                     stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        check("rescue: the joined text is the answer", text == answer, text)
        finishes = [c for c in chunks if c.choices and c.choices[0].finish_reason]
        check("rescue: one finish_reason, stop", [c.choices[0].finish_reason for c in finishes] == ["stop"], finishes)
        extra = (finishes[-1].model_extra or {}).get("llm_fallback") if finishes else None
        check("rescue: the last chunk names the producers", extra == {"providers": ["primary", "claude-3-5-sonnet-rescue"]}, extra)
        check("rescue: usage at the end", chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0, chunks[-1])

    def rescue_tools():
        received = []
        try:
            for chunk in client.chat.completions.create(model="rescue_tools", messages=messages, stream=True, tools=[{
                    "type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]):
                received.append(chunk)
            check("rescue: a cut tool call is an error, never a clean end", False, "the stream ended cleanly")
        except openai.APIError as error:
            check("rescue: a cut tool call is an error, never a clean end", "never continued" in str(error), error)

    def rescue_refused():
        text = ""
        try:
            for chunk in client.chat.completions.create(model="rescue_refused", messages=messages, stream=True):
                text += (chunk.choices[0].delta.content or "") if chunk.choices else ""
            check("rescue: a refused continuation is an error naming the cut", False, "the stream ended cleanly")
        except openai.APIError as error:
            check("rescue: a refused continuation is an error naming the cut",
                  "interrupted" in str(error) and "continuing it failed" in str(error) and answer.startswith(text), error)

    for name, body in [("chat", chat), ("stream", stream), ("include_usage", include_usage), ("failover", failover),
                       ("tools", tools), ("fidelity", fidelity), ("errors", errors), ("rescue", rescue),
                       ("rescue_tools", rescue_tools), ("rescue_refused", rescue_refused)]:
        run(name, body)

    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
