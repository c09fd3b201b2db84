#!/usr/bin/env python3
"""Makes the seed corpora (Corpus/<target>/) from the test fixtures: every string literal of the test sources that
looks like a response body, an SSE stream, a request body or a YAML file, plus a few hand-written HTTP responses
and error responses (Seeds/). Run it again when the fixtures change; the output is committed."""
import hashlib
import os
import re
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TESTS = os.path.join(ROOT, "Tests")
CORPUS = os.path.join(HERE, "Corpus")


def unescape(text):
    """A Swift string literal's text (no interpolation) as bytes."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n == "n": out.append("\n"); i += 2; continue
            if n == "r": out.append("\r"); i += 2; continue
            if n == "t": out.append("\t"); i += 2; continue
            if n == "0": out.append("\0"); i += 2; continue
            if n in "\"'\\": out.append(n); i += 2; continue
            if n == "u" and i + 2 < len(text) and text[i + 2] == "{":
                end = text.index("}", i)
                out.append(chr(int(text[i + 3:end], 16))); i = end + 1; continue
            if n == "(":
                return None  # interpolation: not a fixed fixture
            if n == "\n":  # line continuation in a multi-line literal
                i += 2; continue
        out.append(c)
        i += 1
    return "".join(out).encode("utf-8")


def literals(source):
    """Every multi-line and single-line string literal of a Swift file, as bytes."""
    found = []
    for match in re.finditer(r'(#?)"""\n(.*?)\n([ \t]*)"""\1', source, re.S):
        indent = match.group(3)
        lines = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in match.group(2).split("\n")]
        text = "\n".join(lines)
        value = text.encode() if match.group(1) else unescape(text)
        if value is not None: found.append(value)
    single = re.sub(r'#?"""\n.*?\n[ \t]*"""#?', "", source, flags=re.S)
    for match in re.finditer(r'#"(.*?)"#', single):
        if "\\#(" not in match.group(1) and len(match.group(1)) >= 8: found.append(match.group(1).encode())
    single = re.sub(r'#".*?"#', "", single)
    for match in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', single):
        value = unescape(match.group(1))
        if value is not None and len(value) >= 8: found.append(value)
    return found


def is_json(value):
    stripped = value.strip()
    return stripped[:1] in (b"{", b"[") and stripped[-1:] in (b"}", b"]")


def is_sse(value):
    return b"data:" in value or b"event:" in value


def file_format(path):
    name = os.path.basename(path)
    for marker, fmt in (("Anthropic", "Anthropic"), ("Gemini", "Gemini"), ("OpenAI", "OpenAI")):
        if marker in name: return fmt
    return None


corpora = {}


def add(target, value):
    corpora.setdefault(target, set()).add(bytes(value))


def main():
    for directory, _, files in os.walk(TESTS):
        for name in sorted(files):
            if not name.endswith(".swift"): continue
            path = os.path.join(directory, name)
            with open(path, encoding="utf-8") as handle:
                values = literals(handle.read())
            fmt = file_format(path)
            for value in values:
                if is_sse(value):
                    # SSE streams need their blank lines; fixtures written with `\n\n` keep them.
                    add("FuzzSSE", bytes([2]) + value)
                    add("FuzzSSE", bytes([6]) + value)
                    for f in ([fmt] if fmt else ["OpenAI", "Anthropic", "Gemini"]):
                        add(f"Fuzz{f}Stream", value)
                    add("FuzzHTTPClient", b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                        + b"%x\r\n" % len(value) + value + b"\r\n0\r\n\r\n")
                elif is_json(value):
                    for target in ("FuzzJSONReader", "FuzzFastJSON"):
                        add(target, value)
                    if b'"messages"' in value:
                        add("FuzzGatewayRequest", value)
                    for f in ([fmt] if fmt else ["OpenAI", "Anthropic", "Gemini"]):
                        add(f"Fuzz{f}Response", value)
                        if b'"error"' in value:
                            add(f"Fuzz{f}Error", b"429\nretry-after: 2\nx-request-id: req_1\n\n" + value)
                            add(f"Fuzz{f}Error", b"400\n\n" + value)
                    if fmt == "OpenAI" or fmt is None:
                        add("FuzzOpenAIResponseReader", value)
                elif b"chains:" in value or b"providers:" in value:
                    add("FuzzConfig", value)
                elif value.startswith(b"HTTP/1."):
                    add("FuzzHTTPClient", value)
    with open(os.path.join(ROOT, "llm-fallback.example.yaml"), "rb") as handle:
        add("FuzzConfig", handle.read())
    # Hand-written seeds: Seeds/<target>/* (error responses with every header the classifier reads, HTTP framings).
    seeds = os.path.join(HERE, "Seeds")
    for target in sorted(os.listdir(seeds)):
        for name in sorted(os.listdir(os.path.join(seeds, target))):
            with open(os.path.join(seeds, target, name), "rb") as handle:
                add(target, handle.read())
    if os.path.isdir(CORPUS): shutil.rmtree(CORPUS)
    for target, values in sorted(corpora.items()):
        os.makedirs(os.path.join(CORPUS, target))
        for value in values:
            with open(os.path.join(CORPUS, target, hashlib.sha1(value).hexdigest()), "wb") as handle:
                handle.write(value)
        print(f"{target}: {len(values)} seeds")


main()
