import LLMFallback
import NIOCore

/// The three wire formats the benchmarks cover.
public enum BenchFormat: String, CaseIterable, Sendable {
    case openAI = "OpenAI"
    case anthropic = "Anthropic"
    case gemini = "Gemini"

    /// The provider kind name the library knows this format by.
    public var kind: String {
        switch self {
        case .openAI: "openai"
        case .anthropic: "anthropic"
        case .gemini: "google"
        }
    }

    /// A model name of the kind real traffic uses.
    public var model: String {
        switch self {
        case .openAI: "gpt-4o-2024-08-06"
        case .anthropic: "claude-sonnet-4-20250514"
        case .gemini: "gemini-2.0-flash"
        }
    }

    /// The format's built-in adapter.
    public var adapter: any ProviderAdapter {
        switch self {
        case .openAI: OpenAIAdapter()
        case .anthropic: AnthropicAdapter()
        case .gemini: GeminiAdapter()
        }
    }

    /// A provider of this format at `baseURL` (the format's public API when `nil`), with a dummy key.
    public func resolvedProvider(baseURL: String? = nil, model: String? = nil) throws -> ResolvedProvider {
        let provider = Provider(kind, model: model ?? self.model, apiKey: "bench-key-0123456789", baseURL: baseURL)
        return try provider.resolved(environment: [:])
    }
}

/// Payloads shaped like real traffic, built once and reused by every iteration.
public enum Fixtures {
    // MARK: Request

    /// A realistic request: a system prompt, three turns (user, assistant, user) and one tool.
    public static let request: ChatRequest = {
        let weather = Tool(
            name: "get_weather",
            description: "Get the current weather and a short forecast for a city.",
            parameters: [
                "type": "object",
                "properties": [
                    "city": ["type": "string", "description": "The city name, for example Paris or San Francisco."],
                    "unit": ["type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit."],
                    "days": ["type": "integer", "minimum": 1, "maximum": 7, "description": "Forecast length in days."],
                ],
                "required": ["city"],
            ]
        )
        return ChatRequest(
            messages: [
                .system(
                    "You are a concise travel assistant. Answer in plain prose, cite the tool results you used, "
                        + "and never invent weather data: call get_weather whenever the user asks about conditions."
                ),
                .user("I'm flying to Lisbon next Tuesday for four days. What should I pack, and is it going to rain?"),
                .assistant(
                    "Lisbon in spring is usually mild, around 16 to 22 degrees Celsius during the day and cooler in "
                        + "the evening. Pack light layers, a windproof jacket and comfortable walking shoes for the "
                        + "hills. I can check the actual forecast for your dates if you like."
                ),
                .user("Yes please, check the forecast, and tell me whether I need an umbrella."),
            ],
            temperature: 0.7,
            maxTokens: 1024,
            tools: [weather],
            toolChoice: .auto
        )
    }()

    // MARK: Text

    private static let vocabulary = [
        "the", "forecast", "for", "Lisbon", "shows", "light", "rain", "on", "Tuesday", "afternoon", "with", "clear",
        "skies", "returning", "by", "Wednesday", "morning", "temperatures", "stay", "between", "fifteen", "and",
        "twenty", "degrees", "so", "a", "compact", "umbrella", "is", "worth", "packing", "alongside", "layers",
    ]

    /// `count` words of plausible prose, the first without a leading space and every other with one.
    public static func words(_ count: Int) -> [String] {
        (0..<count).map { index in
            let word = vocabulary[(index * 7 + index / vocabulary.count) % vocabulary.count]
            return index == 0 ? word.prefix(1).uppercased() + word.dropFirst() : " " + word
        }
    }

    /// The answer a non-streamed response carries: about 150 words.
    public static let answerText: String = {
        var text = words(150).joined()
        text += ". Bring a light rain jacket."
        return text
    }()

    // MARK: Response bodies

    /// A complete (non-streamed) response body of `format`, carrying ``answerText``.
    public static func responseBody(_ format: BenchFormat) -> ByteBuffer {
        let text = json(answerText)
        let body: String
        switch format {
        case .openAI:
            body = """
                {"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,\
                "model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":\(text),\
                "refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":412,\
                "completion_tokens":158,"total_tokens":570,\
                "prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},\
                "completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,\
                "rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}
                """
        case .anthropic:
            body = """
                {"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant",\
                "model":"claude-sonnet-4-20250514","content":[{"type":"text","text":\(text)}],"stop_reason":"end_turn",\
                "stop_sequence":null,"usage":{"input_tokens":412,"cache_creation_input_tokens":0,\
                "cache_read_input_tokens":0,"output_tokens":158,"service_tier":"standard"}}
                """
        case .gemini:
            body = """
                {"candidates":[{"content":{"parts":[{"text":\(text)}],"role":"model"},"finishReason":"STOP",\
                "avgLogprobs":-0.2131476426124573}],"usageMetadata":{"promptTokenCount":412,"candidatesTokenCount":158,\
                "totalTokenCount":570,"promptTokensDetails":[{"modality":"TEXT","tokenCount":412}],\
                "candidatesTokensDetails":[{"modality":"TEXT","tokenCount":158}]},"modelVersion":"gemini-2.0-flash",\
                "responseId":"oBvOZ7-WJ4qOmNAPmeDx2Ac"}
                """
        }
        return ByteBuffer(string: body)
    }

    // MARK: Streams

    /// The Server-Sent Events of a streamed answer of `format` with `chunks` content chunks (one word each), with the
    /// format's opening and closing events, as one string.
    public static func streamText(_ format: BenchFormat, chunks: Int) -> String {
        let pieces = words(chunks)
        var out = ""
        out.reserveCapacity(chunks * 320)
        switch format {
        case .openAI:
            let head = #"data: {"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk","#
                + #""created":1741570283,"model":"gpt-4o-2024-08-06","service_tier":"default","#
                + #""system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,"delta":"#
            let tail = #","logprobs":null,"finish_reason":null}],"usage":null}"# + "\n\n"
            out += head + #"{"role":"assistant","content":"","refusal":null}"# + tail
            for piece in pieces {
                out += head + #"{"content":"# + json(piece) + "}" + tail
            }
            out += head + #"{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"# + "\n\n"
            out += #"data: {"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk","#
                + #""created":1741570283,"model":"gpt-4o-2024-08-06","service_tier":"default","#
                + #""system_fingerprint":"fp_eb9dce56a8","choices":[],"usage":{"prompt_tokens":412,"#
                + #""completion_tokens":\#(chunks),"total_tokens":\#(412 + chunks),"prompt_tokens_details":"#
                + #"{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"#
                + #""audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"# + "\n\n"
            out += "data: [DONE]\n\n"
        case .anthropic:
            func event(_ name: String, _ data: String) -> String { "event: \(name)\ndata: \(data)\n\n" }
            out += event(
                "message_start",
                #"{"type":"message_start","message":{"id":"msg_01KkEXgmsRX8VUA5tngPMH8C","type":"message","#
                    + #""role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"#
                    + #""stop_sequence":null,"usage":{"input_tokens":412,"cache_creation_input_tokens":0,"#
                    + #""cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}"#
            )
            out += event(
                "content_block_start",
                #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
            )
            out += event("ping", #"{"type": "ping"}"#)
            for piece in pieces {
                out += event(
                    "content_block_delta",
                    #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"#
                        + json(piece) + "}}"
                )
            }
            out += event("content_block_stop", #"{"type":"content_block_stop","index":0}"#)
            out += event(
                "message_delta",
                #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"#
                    + #""usage":{"output_tokens":\#(chunks)}}"#
            )
            out += event("message_stop", #"{"type":"message_stop"}"#)
        case .gemini:
            for (index, piece) in pieces.enumerated() {
                let isLast = index == pieces.count - 1
                let finish = isLast ? #","finishReason":"STOP""# : ""
                let usage =
                    isLast
                    ? #"{"promptTokenCount":412,"candidatesTokenCount":\#(chunks),"totalTokenCount":\#(412 + chunks),"#
                        + #""promptTokensDetails":[{"modality":"TEXT","tokenCount":412}]}"#
                    : #"{"promptTokenCount":412,"totalTokenCount":412,"#
                        + #""promptTokensDetails":[{"modality":"TEXT","tokenCount":412}]}"#
                out += #"data: {"candidates":[{"content":{"parts":[{"text":"# + json(piece) + #"}],"role":"model"}"#
                    + finish + #"}],"usageMetadata":"# + usage
                    + #","modelVersion":"gemini-2.0-flash","responseId":"oBvOZ7-WJ4qOmNAPmeDx2Ac"}"# + "\r\n\r\n"
            }
        }
        return out
    }

    /// ``streamText(_:chunks:)`` cut into buffers of `bufferSize` bytes, as a socket would deliver it (the cuts fall
    /// anywhere: inside lines, events and UTF-8 sequences).
    public static func streamBuffers(_ format: BenchFormat, chunks: Int, bufferSize: Int = 1024) -> [ByteBuffer] {
        let bytes = Array(streamText(format, chunks: chunks).utf8)
        return stride(from: 0, to: bytes.count, by: bufferSize).map { start in
            ByteBuffer(bytes: bytes[start..<min(start + bufferSize, bytes.count)])
        }
    }

    /// `text` as a JSON string literal.
    public static func json(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                        + String(scalar.value, radix: 16)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
