import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import LLMFallback

// Random cases use the library's SeededGenerator, so that a failing one can be replayed.

@Suite("OpenAI request writing agrees with JSONEncoder")
struct OpenAIRequestWriterTests {
    /// Every control character, the characters JSON escapes, and UTF-8 of every length.
    static let awkward: String = {
        var text = ""
        for scalar in 0..<0x20 { text.unicodeScalars.append(Unicode.Scalar(UInt8(scalar))) }
        return text + #" "quoted" back\slash / slash \n not-a-newline DEL:\#u{7F} é ß 中文 🎉 👩‍👩‍👧 \#u{2028}\#u{2029}\#u{FEFF} \#u{10FFFF} e\#u{301}"#
    }()

    static let doubles: [Double] = [
        0, -0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1, 1.5, 2, 100, 1e-7, 2.5e-5, 1e15, 1e16, 1e21, 1e22, 1.2345678901234568e17,
        .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, -1.7976931348623157e308, 0.1 + 0.2, 1.0 / 3.0, -42.125,
    ]

    static let requests: [ChatRequest] = {
        let weather = Tool(
            name: "get_weather",
            description: "Weather",
            parameters: ["type": "object", "properties": ["city": ["type": "string", "enum": ["Paris", "Zürich"]]], "required": ["city"]],
            strict: true
        )
        let numbers: JSONValue = [
            "ints": [0, 1, -1, .int(Int.max), .int(Int.min), 1_000_000],
            "doubles": .array(doubles.map(JSONValue.double)),
            "misc": [nil, true, false, "", [], [:], [[[]]]],
            awkward: .string(awkward),
        ]
        return [
            ChatRequest(prompt: "hi"),
            ChatRequest(prompt: awkward, system: awkward, temperature: 0.2, maxTokens: 0),
            ChatRequest(
                messages: [
                    .system("Be brief."),
                    .user([.text("What is this?"), .image(.url("https://x/cat.png?a=1&b=/2", detail: "low")), .image(.base64("AAAA+/==", mediaType: "image/png"))]),
                    .user([]),
                    .user([.image(.url("data:image/gif;base64,R0lGOD", detail: nil)), .text(awkward)]),
                    .assistant("", toolCalls: [ToolCall(id: "call_1", name: "get_weather", arguments: "{\"city\":\"Paris\"}")]),
                    .assistant("Let me check.", toolCalls: [
                        ToolCall(id: "call_2", name: "a", arguments: ""), ToolCall(id: awkward, name: awkward, arguments: awkward),
                    ]),
                    .assistant(""),
                    .tool(callID: "call_1", name: "get_weather", content: "sunny"),
                    .tool(callID: "call_2", content: awkward),
                    Message(role: .user, content: "named", name: "ann \"the\" user"),
                    Message(role: Role(rawValue: "developer"), content: .text("custom role")),
                ],
                temperature: 1.0,
                topP: 1e-7,
                maxTokens: 100,
                stop: ["END", "\n\n", awkward],
                tools: [weather, Tool(name: "no_description"), Tool(name: "numbers", description: awkward, parameters: numbers, strict: false)],
                toolChoice: .tool("get_weather"),
                parallelToolCalls: false,
                responseFormat: .jsonSchema(name: "answer", schema: numbers, strict: true),
                seed: Int.min,
                user: awkward
            ),
            ChatRequest(messages: [.user("x")], temperature: -0.0, topP: 0.9999999999999999, toolChoice: .auto, parallelToolCalls: true, responseFormat: .text, seed: Int.max),
            ChatRequest(messages: [.user("x")], temperature: 1e21, toolChoice: ToolChoice.none, responseFormat: .jsonObject, user: ""),
            ChatRequest(messages: [.user("x")], temperature: .leastNonzeroMagnitude, toolChoice: .required, responseFormat: .jsonSchema(name: "n", schema: [:], strict: nil)),
            ChatRequest(messages: []),
        ]
    }()

    /// The body both ways: written by hand, and by `JSONEncoder` as before.
    static func encodings(_ body: OpenAIRequestBody) throws -> (fast: String, codable: String) {
        let fast = try body.writeJSON()
        let codable = try WireJSON.encoder.encode(body)
        return (String(buffer: fast), String(decoding: codable, as: UTF8.self))
    }

    static func expectSame(_ body: OpenAIRequestBody, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (fast, codable) = try encodings(body)
        // JSONEncoder writes members in hash order, which changes from run to run, so the texts are compared as
        // values (both as JSONValue, which tells integers from doubles, and through JSONSerialization)...
        // JSONEncoder does not keep members in order; the hand-written writer does. Compared with keys sorted:
        #expect(try sortedKeys(JSONValue(parsing: fast)) == sortedKeys(JSONValue(parsing: codable)), sourceLocation: sourceLocation)
        let parsedFast = try JSONSerialization.jsonObject(with: Data(fast.utf8)) as? NSDictionary
        let parsedCodable = try JSONSerialization.jsonObject(with: Data(codable.utf8)) as? NSDictionary
        #expect(parsedFast != nil && parsedFast == parsedCodable, sourceLocation: sourceLocation)
        // ...and as the same bytes in another order, which holds only if every escape and number is spelled alike.
        #expect(fast.utf8.sorted() == codable.utf8.sorted(), sourceLocation: sourceLocation)
    }

    @Test(arguments: 0..<requests.count)
    func sameBodyAsJSONEncoder(_ index: Int) throws {
        let request = Self.requests[index]
        for field in [ProviderKind.MaxTokensField.maxTokens, .maxCompletionTokens] {
            for stream in [false, true] {
                for model in ["gpt-4o", nil, Self.awkward] as [String?] {
                    try Self.expectSame(OpenAIRequestBody(request: request, model: model, maxTokensField: field, stream: stream))
                }
            }
        }
    }

    @Test func numbersAreSpelledAsJSONEncoderSpellsThem() throws {
        var generator = SeededGenerator(seed: 7)
        var doubles = Self.doubles
        for _ in 0..<2_000 {
            let value = Double(bitPattern: generator.next())
            if value.isFinite { doubles.append(value) }
            doubles.append(Double(Int64.random(in: -1_000_000...1_000_000, using: &generator)) / 1000)
        }
        for value in doubles {
            var buffer = ByteBuffer()
            try buffer.writeJSONNumber(value)
            let expected = String(decoding: try WireJSON.encoder.encode([value]), as: UTF8.self).dropFirst().dropLast()
            #expect(String(buffer: buffer) == String(expected), "\(value)")
            // And it reads back as the same value.
            #expect(Double(String(buffer: buffer)) == value)
        }
    }

    @Test func everyScalarClassIsEscapedAsJSONEncoderEscapesIt() throws {
        var generator = SeededGenerator(seed: 11)
        let pool: [Unicode.Scalar] = (0..<0x80).map { Unicode.Scalar(UInt8($0)) } + ["é", "中", "🎉", "\u{2028}", "\u{FEFF}", "\u{10FFFF}", "\u{D7FF}", "\u{E000}"]
        for _ in 0..<500 {
            var text = ""
            for _ in 0..<Int.random(in: 0..<40, using: &generator) { text.unicodeScalars.append(pool.randomElement(using: &generator)!) }
            var buffer = ByteBuffer()
            buffer.writeJSONString(text)
            #expect(String(buffer: buffer) == String(decoding: try WireJSON.encoder.encode(text), as: UTF8.self))
        }
    }

    /// A random free-form value, with awkward keys, strings and numbers.
    static func randomValue(depth: Int, using generator: inout SeededGenerator) -> JSONValue {
        let strings = ["", "a", "type", awkward, "🎉", "\"", "\\", "/", "\u{0}", "line\nbreak"]
        switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &generator) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .int(Int(truncatingIfNeeded: generator.next()) >> Int.random(in: 0..<64, using: &generator))
        case 3:
            let value = Double(bitPattern: generator.next())
            return .double(value.isFinite ? value : doubles.randomElement(using: &generator)!)
        case 4: return .string(strings.randomElement(using: &generator)!)
        case 5: return .array((0..<Int.random(in: 0..<5, using: &generator)).map { _ in randomValue(depth: depth + 1, using: &generator) })
        default:
            var members = JSONObject()
            for _ in 0..<Int.random(in: 0..<6, using: &generator) {
                members[strings.randomElement(using: &generator)! + String(Int.random(in: 0..<3, using: &generator))] = randomValue(depth: depth + 1, using: &generator)
            }
            return .object(members)
        }
    }

    @Test func randomSchemasAndArguments() throws {
        var generator = SeededGenerator(seed: 3)
        for round in 0..<300 {
            let schema = Self.randomValue(depth: 0, using: &generator)
            let request = ChatRequest(
                messages: [.user(schema.jsonString), .assistant("", toolCalls: [ToolCall(id: "c\(round)", name: "f", arguments: schema.jsonString)])],
                temperature: Self.doubles.randomElement(using: &generator),
                tools: [Tool(name: "f", parameters: schema)],
                responseFormat: .jsonSchema(name: "s", schema: schema, strict: Bool.random(using: &generator) ? nil : true)
            )
            try Self.expectSame(OpenAIRequestBody(request: request, model: "m", maxTokensField: .maxTokens, stream: round % 2 == 0))
        }
    }

    @Test(arguments: [Double.nan, .infinity, -.infinity])
    func nonFiniteNumbersFailAsBefore(_ value: Double) throws {
        let provider = try Provider("openai", model: "gpt-4o", apiKey: "sk-test").resolved()
        for request in [
            ChatRequest(messages: [.user("x")], temperature: value),
            ChatRequest(messages: [.user("x")], topP: value),
            ChatRequest(messages: [.user("x")], tools: [Tool(name: "f", parameters: ["a": [.double(value)]])]),
            ChatRequest(messages: [.user("x")], responseFormat: .jsonSchema(name: "s", schema: .double(value))),
        ] {
            let body = OpenAIRequestBody(request: request, model: "gpt-4o", maxTokensField: .maxCompletionTokens, stream: false)
            #expect(throws: NonFiniteNumber.self) { try body.writeJSON() }
            var expected: ProviderError?
            do { _ = try WireJSON.encode(body) } catch { expected = error }
            #expect {
                try OpenAIAdapter().makeRequest(request, for: provider, stream: false)
            } throws: { error in
                let error = error as? ProviderError
                return error?.kind == .invalidRequest && error?.message == expected?.message && expected != nil
            }
        }
    }

    @Test func theAdapterSendsTheWrittenBody() throws {
        let provider = try Provider("openai", model: "gpt-4o", apiKey: "sk-test").resolved()
        let request = Self.requests[2]
        let parts = try OpenAIAdapter().makeRequest(request, for: provider, stream: true)
        let expected = try OpenAIRequestBody(request: request, model: "gpt-4o", maxTokensField: .maxCompletionTokens, stream: true).writeJSON()
        #expect(parts.body == expected)
    }
}

@Suite("OpenAI response and chunk reading agrees with JSONDecoder")
struct OpenAIResponseReaderTests {
    /// Bodies shaped like those of OpenAI, Azure, Groq, Ollama, vLLM and other compatible servers.
    static let completions: [String] = [
        // OpenAI, text.
        #"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}"#,
        // OpenAI, tool calls with null content, escapes in the arguments.
        #"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"note\":\"line\\nbreak \u00e9 \ud83c\udf89\"}"}},{"id":"call_10","type":"function","function":{"name":"other","arguments":"{}"}}],"refusal":null},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}"#,
        // OpenAI, a refusal.
        #"{"id":"chatcmpl-2","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}"#,
        // Azure: content filter results, prompt_filter_results, empty model in a filtered answer.
        #"{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"}},"finish_reason":"content_filter","index":0,"logprobs":null,"message":{"content":"","role":"assistant"}}],"created":1727000000,"id":"chatcmpl-A","model":"","object":"chat.completion","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"jailbreak":{"filtered":false,"detected":false}}}],"system_fingerprint":null,"usage":{"completion_tokens":0,"prompt_tokens":10,"total_tokens":10}}"#,
        // Groq: x_groq, timing floats in usage.
        #"{"id":"chatcmpl-f51b","object":"chat.completion","created":1730241104,"model":"llama3-8b-8192","choices":[{"index":0,"message":{"role":"assistant","content":"Fast inference matters."},"logprobs":null,"finish_reason":"stop"}],"usage":{"queue_time":0.037493756,"prompt_tokens":18,"prompt_time":0.000680594,"completion_tokens":556,"completion_time":0.463333333,"total_tokens":574,"total_time":0.464013927},"system_fingerprint":"fp_179b0f92c9","x_groq":{"id":"req_01jbd6g2qdfw2adyrt2az8hz4w"}}"#,
        // Ollama: no usage details, pretty-printed with \r\n and tabs.
        "{\r\n\t\"id\": \"chatcmpl-123\",\r\n\t\"object\": \"chat.completion\",\r\n\t\"created\": 1721000000,\r\n\t\"model\": \"llama3.2\",\r\n\t\"system_fingerprint\": \"fp_ollama\",\r\n\t\"choices\": [ { \"index\": 0, \"message\": { \"role\": \"assistant\", \"content\": \"Bonjour ! \\u00c7a va ?\" }, \"finish_reason\": \"stop\" } ],\r\n\t\"usage\": { \"prompt_tokens\": 26, \"completion_tokens\": 8, \"total_tokens\": 34 }\r\n}\r\n",
        // vLLM: reasoning_content, stop_reason, prompt_logprobs, several choices out of order.
        #"{"id":"cmpl-abc","object":"chat.completion","created":1730000000,"model":"Qwen/Qwen2.5-7B-Instruct","choices":[{"index":1,"message":{"role":"assistant","content":"second","tool_calls":[]},"logprobs":null,"finish_reason":"length","stop_reason":null},{"index":0,"message":{"role":"assistant","reasoning_content":"thinking...","content":"first","tool_calls":[]},"logprobs":{"content":[{"token":"first","logprob":-0.0001,"bytes":[102,105],"top_logprobs":[]}]},"finish_reason":"stop","stop_reason":128001}],"usage":{"prompt_tokens":5,"total_tokens":7,"completion_tokens":2,"prompt_tokens_details":null},"prompt_logprobs":null}"#,
        // Array content (some compatible servers), with parts that are not text and a part without text.
        #"{"id":"x","choices":[{"message":{"content":[{"type":"text","text":"Hello"},{"type":"image","url":"u"},{"type":"text","text":", world"},{"type":"text","text":7},"stray",3,null,[1,2],{"text":"!"}]},"finish_reason":"stop"}]}"#,
        // Tool call without an id or arguments, numbers as strings in an error-free body, missing usage.
        #"{"choices":[{"message":{"content":"","tool_calls":[{"function":{"name":"f"}},{"id":null,"type":"function","function":{"name":"g","arguments":null}}]},"finish_reason":"function_call"}]}"#,
        // An error inside a 200 body, with a numeric code.
        #"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":500}}"#,
        #"{"error":{"message":"Rate limit","type":"requests","code":"rate_limit_exceeded"},"choices":null}"#,
        // No choices, empty choices, a choice without a message: valid JSON the adapter then refuses.
        #"{}"#, #"{"choices":[]}"#, #"{"choices":[{"index":0}]}"#, #"{"choices":null,"usage":null,"id":null,"model":null}"#,
        // Unknown members of every shape, deep nesting, exponents and big numbers where they are skipped.
        #"{"meta":{"a":[{"b":[[[{"c":null}]]]}],"n":-1.5e+300,"big":123456789012345678901234567890,"t":true,"f":false,"s":"\/\b\f\n\r\t\"\\"},"choices":[{"message":{"content":"ok","extra":{"x":[1e-400]}},"finish_reason":null,"logprobs":{"content":null}}],"usage":{"prompt_tokens":1,"completion_tokens":2,"extra":[]}}"#,
        // Keys in a different order, whitespace everywhere.
        "  { \"usage\" : { \"total_tokens\" : 3 , \"completion_tokens\" : 2 , \"prompt_tokens\" : 1 } , \"choices\" : [ { \"finish_reason\" : \"stop\" , \"message\" : { \"content\" : \"a\\\"b\" } , \"index\" : 0 } ] , \"model\" : \"m\" , \"id\" : \"i\" }  ",
        // An unpaired surrogate where it is skipped (JSONDecoder does not look at it either).
        #"{"unused":"\ud800 lone surrogate","choices":[{"message":{"content":"x"}}]}"#,
        // Negative and zero integers, empty strings.
        #"{"id":"","model":"","choices":[{"index":-0,"message":{"content":""},"finish_reason":""}],"usage":{"prompt_tokens":-1,"completion_tokens":0,"total_tokens":999999999999999999}}"#,
    ]

    /// Valid bodies the fast reader leaves to `JSONDecoder`, which reads them.
    static let leftToJSONDecoder: [String] = [
        #"{"id":"a","id":"b","choices":[{"message":{"content":"x"}}]}"#,
        #"{"choices":[{"index":0.0,"message":{"content":"x"}}]}"#,
        #"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":1e2}}"#,
        #"{"\u0069d":"escaped key","choices":[{"message":{"content":"x"}}]}"#,
        "\u{FEFF}{\"choices\":[{\"message\":{\"content\":\"x\"}}]}",
        #"{"choices":[{"message":{"content":[{"text":"a","text":"b"}]}}]}"#,
        #"{"choices":[{"message":{"content":[{"type":"text","text":"a","n":1.5}]}}]}"#,
        #"{"error":{"message":"m","code":4.0}}"#,
        #"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":1234567890123456789}}"#,
        // JSONDecoder is lenient with what it skips (a trailing comma, a bad number or escape); the reader is not.
        #"{"choices":[],}"#, #"{"a":-,"choices":[{"message":{"content":"x"}}]}"#, #"{"a":1.,"choices":[]}"#, #"{"a":"\x","choices":[]}"#,
    ]

    /// Bodies `JSONDecoder` refuses; the fast reader must refuse them too.
    static let malformed: [String] = [
        "", " ", "not json", "[1,2]", "null", "\"text\"", "{", "{\"choices\":", #"{"choices":"x"}"#, #"{"choices":[null]}"#,
        #"{"choices":[{"message":"hi"}]}"#, #"{"choices":[{"message":{"content":5}}]}"#, #"{"choices":[{"message":{"content":{"text":"x"}}}]}"#,
        #"{"choices":[{"message":{"content":[{"n":1e400}]}}]}"#, #"{"id":5,"choices":[]}"#, #"{"model":true,"choices":[]}"#,
        #"{"choices":[{"index":"0","message":{"content":"x"}}]}"#, #"{"choices":[],"usage":{"prompt_tokens":"3"}}"#,
        #"{"choices":[],"usage":{"prompt_tokens":9223372036854775808}}"#, #"{"choices":[],"usage":{"prompt_tokens_details":[]}}"#,
        #"{"choices":[{"message":{"tool_calls":{}}}]}"#, #"{"choices":[{"message":{"tool_calls":[{"function":"f"}]}}]}"#,
        #"{"error":"boom"}"#, #"{"error":{"code":true}}"#, #"{"choices":[]} trailing"#, #"{"choices":[01]}"#,
        #"{'choices':[]}"#, #"{"choices":[{"message":{"content":"x"}}]"#, #"{"a":tru}"#, #"{"a":nul}"#,
        #"{"a":"\u12"}"#, "{\"choices\":[{\"message\":{\"content\":\"\u{1}\"}}]}",
    ]

    static func codable(_ text: some Collection<UInt8>) -> OpenAICompletion? {
        try? WireJSON.decoder.decode(OpenAICompletion.self, from: Data(text))
    }

    static func fast(_ text: some Collection<UInt8>) -> OpenAICompletion? {
        OpenAICompletion(fastParsing: ByteBuffer(bytes: text))
    }

    @Test(arguments: completions)
    func readsRealBodiesAsJSONDecoderDoes(_ text: String) throws {
        let expected = try WireJSON.decoder.decode(OpenAICompletion.self, from: Data(text.utf8))
        let fast = try #require(Self.fast(text.utf8), "the fast reader left a plain body to JSONDecoder")
        #expect(fast == expected)
    }

    @Test(arguments: leftToJSONDecoder)
    func leavesTheUnusualToJSONDecoder(_ text: String) throws {
        #expect(Self.fast(text.utf8) == nil)
        let expected = try #require(Self.codable(text.utf8))
        let provider = try Provider("openai", model: "gpt-4o", apiKey: "sk-test").resolved()
        if expected.error == nil, let choice = expected.choices?.first, choice.message != nil {
            let response = try OpenAIAdapter().decodeResponse(ByteBuffer(string: text), headers: [:], for: provider)
            #expect(response.content == expected.choices?.first?.message?.content?.text)
        }
    }

    @Test(arguments: malformed)
    func refusesWhatJSONDecoderRefuses(_ text: String) throws {
        #expect(Self.codable(text.utf8) == nil, "JSONDecoder reads it: not a malformed body")
        #expect(Self.fast(text.utf8) == nil)
        let provider = try Provider("openai", model: "gpt-4o", apiKey: "sk-test").resolved()
        var expected: ProviderError?
        do {
            _ = try WireJSON.decode(OpenAICompletion.self, from: ByteBuffer(string: text), what: "chat completion")
        } catch {
            expected = error
        }
        #expect {
            try OpenAIAdapter().decodeResponse(ByteBuffer(string: text), headers: [:], for: provider)
        } throws: { error in
            let error = error as? ProviderError
            return error?.kind == .invalidResponse && error?.message == expected?.message
        }
    }

    @Test func invalidUTF8IsLeftToJSONDecoder() {
        for bytes: [UInt8] in [
            Array(#"{"choices":[{"message":{"content":""#.utf8) + [0xFF] + Array(#""}}]}"#.utf8),
            Array(#"{"choices":[{"message":{"content":"a\n"#.utf8) + [0xC3] + Array(#""}}]}"#.utf8),
            Array(#"{"x":""#.utf8) + [0xED, 0xA0, 0x80] + Array(#"","choices":[]}"#.utf8),
            Array(#"{""#.utf8) + [0xC0, 0xAF] + Array(#"":1,"choices":[]}"#.utf8),
        ] {
            #expect(Self.fast(bytes) == nil)
        }
    }

    /// Every prefix of every body: where `JSONDecoder` fails, the fast reader must fail too.
    @Test func truncatedBodies() {
        for text in Self.completions + Self.leftToJSONDecoder {
            let bytes = Array(text.utf8)
            for end in 0..<bytes.count {
                let prefix = bytes[..<end]
                if let fast = Self.fast(prefix) { #expect(fast == Self.codable(prefix), "\(String(decoding: prefix, as: UTF8.self))") }
            }
        }
    }

    /// Random damage to every body: whatever the fast reader accepts, `JSONDecoder` reads as the same value.
    @Test func damagedBodies() {
        var generator = SeededGenerator(seed: 42)
        let replacements: [[UInt8]] = [
            [], Array("\"".utf8), Array("\\".utf8), Array("{".utf8), Array("}".utf8), Array("[".utf8), Array("]".utf8),
            Array(",".utf8), Array(":".utf8), Array("1".utf8), Array("-".utf8), Array(".5".utf8), Array("e9".utf8),
            Array("null".utf8), Array("true".utf8), Array(" ".utf8), Array("\\u00".utf8), Array("é".utf8), [0xFF], [0x01],
            Array(#""id":"x","#.utf8), Array(#""index":1,"#.utf8), Array(#"{"text":"t"}"#.utf8),
        ]
        var accepted = 0
        for text in Self.completions {
            let bytes = Array(text.utf8)
            for _ in 0..<400 {
                var damaged = bytes
                for _ in 0..<Int.random(in: 1...2, using: &generator) where !damaged.isEmpty {
                    let start = Int.random(in: 0..<damaged.count, using: &generator)
                    let end = min(damaged.count, start + Int.random(in: 0...2, using: &generator))
                    damaged.replaceSubrange(start..<end, with: replacements.randomElement(using: &generator)!)
                }
                if let fast = Self.fast(damaged) {
                    accepted += 1
                    #expect(fast == Self.codable(damaged), "\(String(decoding: damaged, as: UTF8.self))")
                }
            }
        }
        // Some damage leaves valid JSON (a changed digit or string), which the fast reader must still read.
        #expect(accepted > 100)
    }

    @Test func theAdapterGivesTheSameResponse() throws {
        let provider = try Provider("openai", model: "gpt-4o", apiKey: "sk-test").resolved()
        let adapter = OpenAIAdapter()
        let arrayContent = try adapter.decodeResponse(ByteBuffer(string: Self.completions[7]), headers: [:], for: provider)
        #expect(arrayContent.content == "Hello, world!")
        let refusal = try adapter.decodeResponse(ByteBuffer(string: Self.completions[2]), headers: [:], for: provider)
        #expect(refusal.content == "I can't help with that.")
        let vllm = try adapter.decodeResponse(ByteBuffer(string: Self.completions[6]), headers: [:], for: provider)
        #expect(vllm.content == "first")
        #expect(vllm.finishReason == .stop)
        #expect(vllm.usage == Usage(promptTokens: 5, completionTokens: 2, totalTokens: 7))
        let calls = try adapter.decodeResponse(ByteBuffer(string: Self.completions[8]), headers: [:], for: provider)
        #expect(calls.toolCalls == [ToolCall(id: "call_0", name: "f", arguments: "{}"), ToolCall(id: "call_1", name: "g", arguments: "{}")])
        #expect(calls.finishReason == .toolCalls)
        #expect(calls.rawBody == Data(Self.completions[8].utf8))
        let ollama = try adapter.decodeResponse(ByteBuffer(string: Self.completions[5]), headers: [:], for: provider)
        #expect(ollama.content == "Bonjour ! Ça va ?")
        #expect(ollama.model == "llama3.2")
        #expect {
            try adapter.decodeResponse(ByteBuffer(string: Self.completions[9]), headers: [:], for: provider)
        } throws: { error in
            let error = error as? ProviderError
            return error?.kind == .serverError && error?.code == "500" && error?.message == "The server had an error"
        }
        #expect {
            try adapter.decodeResponse(ByteBuffer(string: "{}"), headers: [:], for: provider)
        } throws: { error in
            (error as? ProviderError)?.message == "malformed chat completion: missing key 'choices'; body: {}"
        }
        #expect {
            try adapter.decodeResponse(ByteBuffer(string: "not json"), headers: [:], for: provider)
        } throws: { error in
            (error as? ProviderError)?.message == "malformed chat completion: not valid JSON; body: not json"
        }
    }

    // MARK: Stream chunks

    static let chunks: [String] = [
        #"{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        #"{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":" w\u00f6rld \"q\" \\ \ud83c\udf89\n"},"logprobs":null,"finish_reason":null}]}"#,
        #"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}},{"index":1,"id":"call_2","type":"function","function":{"name":"g","arguments":"{\"a\":"}}]},"finish_reason":null}]}"#,
        #"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"1}"}}]},"finish_reason":null}]}"#,
        #"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        #"{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o","service_tier":"default","choices":[],"usage":{"prompt_tokens":412,"completion_tokens":500,"total_tokens":912,"prompt_tokens_details":{"cached_tokens":128,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":64,"audio_tokens":0}}}"#,
        // Groq puts usage in x_groq; Azure sends a first chunk with prompt_filter_results and no choices.
        #"{"id":"c2","object":"chat.completion.chunk","created":1,"model":"llama3","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"x_groq":{"id":"req_1","usage":{"queue_time":0.02,"prompt_tokens":10}}}"#,
        #"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#,
        // vLLM and Ollama: reasoning deltas, several choices, a second choice first.
        #"{"id":"c3","model":"qwen","choices":[{"index":1,"delta":{"content":"other"},"finish_reason":null},{"index":0,"delta":{"reasoning_content":"hm","content":null},"finish_reason":null}]}"#,
        #"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#,
        // Errors inside the stream.
        #"{"error":{"message":"overloaded","type":"server_error"}}"#,
        #"{"error":{"message":"too many","type":"tokens","code":429}}"#,
    ]

    static let malformedChunks: [String] = [
        "{not json", "[]", #"{"choices":[{"delta":{"content":["a"]}}]}"#, #"{"choices":[{"delta":"x"}]}"#, #"{"choices":{}}"#,
        #"{"choices":[{"index":0,"delta":{"content":"x"}}"#, #"{"usage":{"total_tokens":1.5}}"#, #"{"error":[]}"#,
    ]

    static func codableChunk(_ text: String) -> OpenAIStreamChunk? {
        try? WireJSON.decoder.decode(OpenAIStreamChunk.self, from: Data(text.utf8))
    }

    @Test(arguments: chunks)
    func readsChunksAsJSONDecoderDoes(_ text: String) throws {
        let expected = try WireJSON.decoder.decode(OpenAIStreamChunk.self, from: Data(text.utf8))
        let fast = try #require(OpenAIStreamChunk(fastParsing: text), "the fast reader left a plain chunk to JSONDecoder")
        #expect(fast == expected)
    }

    @Test(arguments: malformedChunks)
    func refusesChunksJSONDecoderRefuses(_ text: String) {
        #expect(Self.codableChunk(text) == nil)
        #expect(OpenAIStreamChunk(fastParsing: text) == nil)
        var decoder = OpenAIStreamDecoder(provider: "openai", model: "gpt-4o")
        #expect {
            try decoder.decode(ServerSentEvent(data: text))
        } throws: { error in
            (error as? ProviderError)?.kind == .invalidResponse
        }
    }

    @Test func damagedChunks() {
        var generator = SeededGenerator(seed: 99)
        let replacements = ["", "\"", "\\", "{", "}", "[", "]", ",", ":", "7", "-", "null", " ", "é", "\u{1}", #""index":2,"#]
        var accepted = 0
        for text in Self.chunks {
            let scalars = Array(text.unicodeScalars)
            for _ in 0..<300 {
                var damaged = String.UnicodeScalarView(scalars)
                let start = Int.random(in: 0..<scalars.count, using: &generator)
                let end = min(scalars.count, start + Int.random(in: 0...2, using: &generator))
                let range = damaged.index(damaged.startIndex, offsetBy: start)..<damaged.index(damaged.startIndex, offsetBy: end)
                damaged.replaceSubrange(range, with: replacements.randomElement(using: &generator)!.unicodeScalars)
                let text = String(damaged)
                if let fast = OpenAIStreamChunk(fastParsing: text) {
                    accepted += 1
                    #expect(fast == Self.codableChunk(text), "\(text)")
                }
            }
        }
        #expect(accepted > 100)
    }

    @Test func theStreamDecoderGivesTheSameChunks() throws {
        var decoder = OpenAIStreamDecoder(provider: "openai", model: "asked")
        let usage = try #require(try decoder.decode(ServerSentEvent(data: Self.chunks[5])))
        #expect(usage.usage == Usage(promptTokens: 412, completionTokens: 500, totalTokens: 912, cachedTokens: 128, reasoningTokens: 64))
        let tools = try #require(try decoder.decode(ServerSentEvent(data: Self.chunks[2])))
        #expect(tools.toolCallDeltas == [ToolCallDelta(index: 0, id: "call_1", name: "f", arguments: ""), ToolCallDelta(index: 1, id: "call_2", name: "g", arguments: "{\"a\":")])
        let text = try #require(try decoder.decode(ServerSentEvent(data: Self.chunks[1])))
        #expect(text.content == " wörld \"q\" \\ 🎉\n")
        #expect(text.model == "gpt-4o")
        // The second choice comes first: the decoder takes index 0, which has no content.
        #expect(try decoder.decode(ServerSentEvent(data: Self.chunks[8])) == nil)
        #expect {
            try decoder.decode(ServerSentEvent(data: Self.chunks[11]))
        } throws: { error in
            (error as? ProviderError)?.kind == .rateLimited && (error as? ProviderError)?.code == "429"
        }
    }
}

/// `value` with every object's members sorted by key, for comparing with what `JSONEncoder` writes.
func sortedKeys(_ value: JSONValue) -> JSONValue {
    switch value {
    case .object(let members):
        return .object(JSONObject(members.sorted { $0.key < $1.key }.map { ($0.key, sortedKeys($0.value)) }))
    case .array(let elements):
        return .array(elements.map(sortedKeys))
    default:
        return value
    }
}
