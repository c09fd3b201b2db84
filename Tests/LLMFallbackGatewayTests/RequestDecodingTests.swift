import Foundation
import LLMFallback
import NIOCore
import Testing

@testable import LLMFallbackGateway

@Suite("Request decoding: the fast path agrees with Codable")
struct RequestDecodingTests {
    static let bodies: [String] = [
        #"{"model":"default","messages":[{"role":"user","content":"Hi"}]}"#,
        #"{"model":"m","messages":[{"role":"developer","content":"Be terse"},{"role":"user","content":"caf\u00e9 \ud83c\udf89 \"q\" \\ \/ \n\t"}],"stream":true,"stream_options":{"include_usage":true}}"#,
        #"""
        {"model":"default","messages":[
          {"role":"system","content":"Be terse."},
          {"role":"user","name":"ann","content":[{"type":"text","text":"What is this?"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}},{"type":"image_url","image_url":"https://x/y.png"}]},
          {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"cat\"}"}}]},
          {"role":"tool","tool_call_id":"call_1","content":"a cat"}],
         "tools":[{"type":"function","function":{"name":"lookup","description":"Looks up",
           "parameters":{"type":"object","properties":{"q":{"type":"string","minLength":1}},"required":["q"]},"strict":true}}],
         "tool_choice":{"type":"function","function":{"name":"lookup"}},
         "temperature":0.25,"top_p":1,"max_tokens":5,"max_completion_tokens":77,"stop":["END","STOP"],"seed":-7,"user":"u-1",
         "parallel_tool_calls":false,"n":1,"logit_bias":{"50256":-100},
         "response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object"},"strict":true}}}
        """#,
        #"{"model":"x","messages":[{"role":"user","content":"a"}],"tool_choice":"required","response_format":{"type":"json_object"},"stop":"END","temperature":1e-3}"#,
        #"{"model":"x","messages":[{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]}],"tool_choice":"none","stop":null,"stream_options":null}"#,
    ]

    @Test("valid requests decode, and their passthrough body is the client's body, members in order", arguments: bodies)
    func decodes(body: String) throws {
        let buffer = ByteBuffer(string: body)
        let decoded = try ChatCompletionRequest.decode(buffer)
        let parsed = try #require(try JSONValue(parsing: body).members)
        #expect(decoded.request.passthrough?.body == parsed)
        #expect(decoded.request.passthrough?.body.keys == parsed.keys)
        #expect(decoded.request.passthrough?.messageCount == decoded.request.messages.count)
    }

    @Test(
        "the parser refuses what is not JSON",
        arguments: [
            #"{"a":1,}"#, #"[1,2"#, #"{"a":"\ud800"}"#, "{\"a\":\"tab\there\"}", #"{"a":01}"#, #"{"a":1.}"#, #"{"a":tru}"#,
            #"{"a":1} x"#, #"{'a':1}"#, #"{"a":-}"#, #"{"a":"\x"}"#, String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
        ]
    )
    func refusesInvalid(text: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: text) }
        #expect(throws: GatewayError.self) { try ChatCompletionRequest.decode(ByteBuffer(string: text)) }
    }

    @Test("numbers and strings parse exactly: a 20-digit integer is not rounded")
    func values() throws {
        let value = try JSONValue(parsing: #"{"i":-12,"d":2.5e2,"z":0,"big":12345678901234567890,"pi":3.14159265358979323846,"s":"\u0041\ud83d\ude00"}"#)
        #expect(value["i"] == .int(-12))
        #expect(value["d"] == .double(250))
        #expect(value["z"] == .int(0))
        #expect(value["big"] == .number("12345678901234567890"))
        #expect(value["pi"] == .number("3.14159265358979323846"))
        #expect(value["s"]?.stringValue == "A😀")
        #expect(value.jsonString == #"{"i":-12,"d":250,"z":0,"big":12345678901234567890,"pi":3.14159265358979323846,"s":"A😀"}"#)
    }

    @Test("a key repeated at the top level is a 400 that names it, whichever key it is", arguments: ["model", "messages", "stream"])
    func duplicateTopLevelKey(key: String) throws {
        let members = [
            #""model":"default""#, #""messages":[{"role":"user","content":"Hi"}]"#, #""stream":false"#,
        ]
        let repeated = members.first { $0.hasPrefix("\"\(key)\"") }!
        let body = "{" + (members + [repeated]).joined(separator: ",") + "}"
        do {
            _ = try ChatCompletionRequest.decode(ByteBuffer(string: body))
            Issue.record("a repeated '\(key)' was accepted")
        } catch {
            #expect(error.status == 400)
            #expect(error.message.contains("'\(key)' appears twice"))
            #expect(error.param == key)
            #expect(error.code == "duplicate_key")
        }
    }

    @Test("a key repeated inside a nested object is refused too")
    func duplicateNestedKey() {
        let body = #"{"model":"m","messages":[{"role":"user","content":"a","role":"system"}]}"#
        #expect(throws: GatewayError.self) { try ChatCompletionRequest.decode(ByteBuffer(string: body)) }
    }

    @Test("a hostile body of many members parses in linear time")
    func manyMembers() throws {
        let members = (0..<100_000).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        let value = try JSONValue(parsing: "{" + members + "}")
        #expect(value.members?.count == 100_000)
        #expect(value["k99999"] == .int(99_999))
    }

    @Test("the unmodelled members are listed for providers of other formats")
    func unmodelledKeys() throws {
        let body = #"{"model":"m","logit_bias":{"50256":-100},"messages":[{"role":"user","content":"a"}],"store":true,"reasoning_effort":"high","metadata":{"k":"v"}}"#
        let decoded = try ChatCompletionRequest.decode(ByteBuffer(string: body))
        #expect(decoded.request.passthrough?.unmodelledKeys == ["logit_bias", "store", "metadata"])
        #expect(decoded.request.reasoningEffort == .high)
    }
}
