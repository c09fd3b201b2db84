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

    @Test("valid requests decode to the same ChatRequest either way", arguments: bodies)
    func equivalence(body: String) throws {
        let buffer = ByteBuffer(string: body)
        let node = try #require(FastJSONParser.parse(buffer), "the fast parser refused valid JSON")
        let fast = try #require(ChatCompletionRequest(node: node), "the fast path refused a valid request")
        let slow = try ChatCompletionRequest.decodeWithDiagnostics(buffer, using: JSONDecoder())
        #expect(fast.model == slow.model)
        #expect(fast.stream == slow.stream)
        #expect(fast.includeUsage == slow.includeUsage)
        #expect(fast.request == slow.request)
    }

    @Test(
        "the fast parser refuses what is not JSON",
        arguments: [
            #"{"a":1,}"#, #"[1,2"#, #"{"a":"\ud800"}"#, "{\"a\":\"tab\there\"}", #"{"a":01}"#, #"{"a":1.}"#, #"{"a":tru}"#,
            #"{"a":1} x"#, #"{'a':1}"#, #"{"a":-}"#, #"{"a":"\x"}"#, String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
        ]
    )
    func refusesInvalid(text: String) {
        #expect(FastJSONParser.parse(ByteBuffer(string: text)) == nil)
    }

    @Test("numbers and strings parse exactly")
    func values() throws {
        let node = try #require(FastJSONParser.parse(ByteBuffer(string: #"{"i":-12,"d":2.5e2,"z":0,"big":12345678901234567890,"s":"\u0041\ud83d\ude00"}"#)))
        guard case .int(-12)? = node["i"], case .double(250)? = node["d"], case .int(0)? = node["z"], case .double? = node["big"] else {
            Issue.record("unexpected numbers: \(node)")
            return
        }
        #expect(node["s"]?.string == "A😀")
    }
}
