import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import LLMFallback

/// Anthropic answers read through the package's JSON tree: a tool call's `input` keeps its member order (as
/// Gemini's `args` and OpenAI's argument text do), and malformed bodies are still worded by `JSONDecoder`.
@Suite struct AnthropicResponseReadingTests {
    static func provider() throws -> ResolvedProvider {
        try Provider("anthropic", model: "claude-sonnet-4-5", apiKey: "k").resolved()
    }

    @Test func toolUseInputKeepsItsMemberOrder() throws {
        let body = #"""
            {"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
             "content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{"zeta":1,"alpha":{"y":2,"b":3},"n":12345678901234567890}}],
             "stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}}
            """#
        let response = try AnthropicAdapter().decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        #expect(response.toolCalls.map(\.arguments) == [#"{"zeta":1,"alpha":{"y":2,"b":3},"n":12345678901234567890}"#])
    }

    @Test func aStreamedToolUseStartKeepsItsInputsOrder() throws {
        var decoder = AnthropicAdapter().makeStreamDecoder(for: try Self.provider())
        let event = ServerSentEvent(
            event: "content_block_start",
            data: #"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{"zeta":1,"alpha":2}}}"#)
        let chunk = try #require(try decoder.decode(event))
        #expect(chunk.toolCallDeltas.first?.arguments == #"{"zeta":1,"alpha":2}"#)
    }

    @Test(arguments: [
        (#"{"id":"msg_1","type":"message"}"#, "content"),
        (#"{"id":"msg_1","type":"message","content":[],"usage":{"input_tokens":"many"}}"#, "usage.input_tokens"),
        (#"{"id":"msg_1","type":"message","content":[{"text":"no type"}]}"#, "type"),
    ])
    func malformedBodiesAreStillWorded(body: String, names: String) throws {
        let error = #expect(throws: ProviderError.self) {
            try AnthropicAdapter().decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        }
        #expect(error?.kind == .invalidResponse)
        #expect(error?.message.contains(names) == true, "\(error?.message ?? "")")
    }

    @Test func aRepeatedKeyFromTheProviderIsStillRead() throws {
        // The provider is not the client: a body JSONParser refuses is read by JSONDecoder, as before.
        let body = #"{"id":"m","type":"message","content":[{"type":"text","text":"a"}],"content":[{"type":"text","text":"b"}]}"#
        let response = try AnthropicAdapter().decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        #expect(["a", "b"].contains(response.content))
    }
}
