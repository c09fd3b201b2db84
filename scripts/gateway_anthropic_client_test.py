#!/usr/bin/env python3
"""Drives a running llm-fallback gateway with the official `anthropic` Python package.

Run by the gateway's Swift integration tests (Tests/LLMFallbackGatewayTests/AnthropicClientTests.swift), which start
MockLLMServer and the gateway and pass the base URL. Expects these chains, as the Swift test sets them up:

  claude        (alias claude-*) an Anthropic provider ("claude-upstream"), then an OpenAI-compatible backup
  failover      its Anthropic primary answers 529 overloaded; the OpenAI-compatible backup ("model-backup") answers
  tools         an OpenAI-compatible provider that answers with a get_weather tool call
  midstream     an Anthropic provider that cuts its stream after one chunk
  ratelimited   every provider answers 429 with retry-after
  overloaded    every provider answers 529
  badrequest    the provider refuses the request (400)
  rescue        an Anthropic provider cuts "The quick brown fox jumps over the lazy dog" after three words; another
                Anthropic provider that takes a prefill finishes it
  rescue_translated  the same cut, finished by an OpenAI-compatible provider told to take a prefill

Exits 0 when every check passed; prints one line per check and a closing "N passed, N failed" line.
"""

import argparse
import sys

import anthropic


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="the gateway's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--api-key", required=True, help="the gateway key")
    args = parser.parse_args()

    client = anthropic.Anthropic(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=30)
    bearer = anthropic.Anthropic(base_url=args.base_url, auth_token=args.api_key, api_key=None, max_retries=0, timeout=30)
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

    def create():
        message = client.messages.create(model="claude-sonnet-4-5-20250929", max_tokens=100, messages=messages)
        check("create: a message", message.type == "message" and message.role == "assistant", message)
        check("create: text", message.content[0].type == "text" and "claude-upstream" in message.content[0].text, message.content)
        check("create: stop_reason", message.stop_reason == "end_turn", message.stop_reason)
        check("create: usage", message.usage.output_tokens > 0, message.usage)

    def create_with_bearer():
        message = bearer.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=messages)
        check("create: Authorization: Bearer is accepted", message.type == "message", message)

    def stream():
        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=messages) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        check("stream: text", "claude-upstream" in text, text)
        check("stream: final message", final.stop_reason == "end_turn" and final.content[0].text == text, final)

    def failover():
        message = client.messages.create(model="failover", max_tokens=100, messages=messages, system="Be brief.")
        check("failover: answered by the backup", "model-backup" in message.content[0].text, message)
        check("failover: Anthropic's shape", message.type == "message" and message.stop_reason == "end_turn", message)
        raw = client.messages.with_raw_response.create(model="failover", max_tokens=100, messages=messages)
        check("failover: the provider header", raw.headers.get("x-llm-fallback-provider") == "backup", dict(raw.headers))
        check("failover: request-id", (raw.headers.get("request-id") or "").startswith("req_"), dict(raw.headers))

    def failover_stream():
        events = []
        with client.messages.stream(model="failover", max_tokens=100, messages=messages) as stream:
            for event in stream:
                events.append(event.type)
            final = stream.get_final_message()
        check("failover stream: backup's text", "model-backup" in final.content[0].text, final)
        check("failover stream: event grammar", events[0] == "message_start" and "message_stop" in events, events)

    def tools():
        tool = {
            "name": "get_weather",
            "description": "The weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
        message = client.messages.create(model="tools", max_tokens=100, messages=messages, tools=[tool])
        block = next((b for b in message.content if b.type == "tool_use"), None)
        check("tools: a tool_use block", block is not None and block.name == "get_weather", message.content)
        check("tools: its input", block is not None and block.input == {"city": "Paris"}, block)
        check("tools: stop_reason tool_use", message.stop_reason == "tool_use", message.stop_reason)
        with client.messages.stream(model="tools", max_tokens=100, messages=messages, tools=[tool]) as stream:
            final = stream.get_final_message()
        block = next((b for b in final.content if b.type == "tool_use"), None)
        check("tools stream: input assembled", block is not None and block.input == {"city": "Paris"}, final.content)
        follow_up = messages + [
            {"role": "assistant", "content": [{"type": "tool_use", "id": block.id if block else "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id if block else "toolu_1", "content": "sunny", "is_error": False}]},
        ]
        message = client.messages.create(model="tools", max_tokens=100, messages=follow_up, tools=[tool])
        check("tools: a tool_result round trip", message.type == "message", message)

    def count_tokens():
        counted = client.messages.count_tokens(model="claude-sonnet-4-5", messages=messages, system="Be brief.")
        check("count_tokens: the provider's count", counted.input_tokens == 1234, counted)
        raw = client.messages.with_raw_response.count_tokens(model="tools", messages=messages)
        check("count_tokens: an estimate says so", raw.headers.get("x-llm-fallback-token-count") == "estimate", dict(raw.headers))
        check("count_tokens: never a silent zero", raw.parse().input_tokens > 0, raw.parse())

    def midstream():
        try:
            with client.messages.stream(model="midstream", max_tokens=100, messages=messages) as stream:
                for _ in stream:
                    pass
            check("midstream: an error, never a clean end", False, "the stream ended cleanly")
        except anthropic.APIStatusError as error:
            check("midstream: an error, never a clean end", "api_error" in str(error), error)

    def expect_error(name, exception, **request):
        try:
            client.messages.create(max_tokens=100, messages=messages, **request)
            check(name, False, "no error")
        except exception as error:
            check(name, True)
            return error
        except Exception as error:  # noqa: BLE001
            check(name, False, f"{type(error).__name__}: {error}")
        return None

    def errors():
        error = expect_error("errors: 429 is RateLimitError", anthropic.RateLimitError, model="ratelimited")
        if error is not None:
            check("errors: 429 has retry-after", error.response.headers.get("retry-after") is not None, dict(error.response.headers))
            check("errors: request-id", (error.response.headers.get("request-id") or "").startswith("req_"), dict(error.response.headers))
        expect_error("errors: 529 is OverloadedError", anthropic.OverloadedError, model="overloaded")
        expect_error("errors: 400 is BadRequestError", anthropic.BadRequestError, model="badrequest")
        expect_error("errors: unknown model is NotFoundError", anthropic.NotFoundError, model="gpt-nonexistent")
        wrong = anthropic.Anthropic(base_url=args.base_url, api_key="wrong-key", max_retries=0, timeout=30)
        try:
            wrong.messages.create(model="claude-x", max_tokens=10, messages=messages)
            check("errors: a wrong key is AuthenticationError", False, "no error")
        except anthropic.AuthenticationError:
            check("errors: a wrong key is AuthenticationError", True)
        try:
            client.messages.create(model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "x" * (300 * 1024)}])
            check("errors: 413 is ContentTooLargeError", False, "no error")
        except anthropic.APIStatusError as error:
            check("errors: 413 is ContentTooLargeError", error.status_code == 413 and type(error).__name__ != "APIStatusError", type(error).__name__)

    def models():
        listed = client.models.list()
        ids = [model.id for model in listed.data]
        check("models: the chains, Anthropic's list", "claude" in ids and "failover" in ids, ids)

    answer = "The quick brown fox jumps over the lazy dog"

    def rescue_check(model, producers):
        with client.messages.stream(model=model, max_tokens=100, messages=messages) as stream:
            events = list(stream)
            final = stream.get_final_message()
        text = "".join(block.text for block in final.content if block.type == "text")
        check(f"{model}: the joined text is the answer", text == answer, text)
        check(f"{model}: one text block", [block.type for block in final.content] == ["text"], final.content)
        check(f"{model}: stop_reason end_turn", final.stop_reason == "end_turn", final.stop_reason)
        deltas = [event for event in events if event.type == "message_delta"]
        extra = (deltas[-1].model_extra or {}).get("llm_fallback") if deltas else None
        check(f"{model}: message_delta names the producers", extra == {"providers": producers}, extra)

    def rescue():
        rescue_check("rescue", ["claude-3-5-haiku-cut", "claude-3-5-sonnet-rescue"])

    def rescue_translated():
        rescue_check("rescue_translated", ["claude-3-5-haiku-cut-2", "local"])

    for name, body in [
        ("rescue", rescue),
        ("rescue_translated", rescue_translated),
        ("create", create),
        ("bearer", create_with_bearer),
        ("stream", stream),
        ("failover", failover),
        ("failover_stream", failover_stream),
        ("tools", tools),
        ("count_tokens", count_tokens),
        ("midstream", midstream),
        ("errors", errors),
        ("models", models),
    ]:
        run(name, body)

    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
