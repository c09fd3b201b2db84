import Foundation
@_spi(Fuzzing) import LLMFallback
import NIOCore

// MARK: - Entry points for the gateway's fuzz targets
//
// As the library's (Sources/LLMFallback/Fuzzing/FuzzEntryPoints.swift): bytes in, the parser run, thrown errors
// ignored; a trap, a hang, memory without bound or a broken promise (`preconditionFailure("fuzz invariant: ...")`)
// is a finding.

/// Entry points for the gateway's fuzz targets under `FuzzTesting/`.
///
/// Not API: the `Fuzzing` SPI exists for the fuzz targets and the crash replay test.
@_spi(Fuzzing)
public enum GatewayFuzzEntryPoints {
    /// The entry points by fuzz target name.
    public static let targets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
        "FuzzGatewayRequest": chatCompletionRequest
    ]

    /// Decodes a `POST /v1/chat/completions` body as the gateway does, and checks that its two parsers agree: a
    /// body the fast path (``FastJSONParser`` and `init(node:)`) accepts, the `Codable` path accepts too, as the
    /// same request.
    ///
    /// The input is the request body.
    public static func chatCompletionRequest(_ input: UnsafeRawBufferPointer) {
        let body = ByteBuffer(bytes: input)
        let decoder = JSONDecoder()
        do {
            _ = try ChatCompletionRequest.decode(body, using: decoder)
        } catch {
            // The message goes back to the client.
            _ = "\(error)"
        }
        guard let node = FastJSONParser.parse(body), let fast = ChatCompletionRequest(node: node) else { return }
        // With a repeated key the two may pick different members (the fast path takes the last, JSONDecoder the
        // first), and so also accept differently: `"role":"system","role":"assistant"` with no content is an
        // assistant message to one and a system message without its required content to the other.
        guard !FuzzEntryPoints.hasRepeatedKeys(node) else { return }
        let slow: ChatCompletionRequest
        do {
            slow = try ChatCompletionRequest.decodeWithDiagnostics(body, using: decoder)
        } catch {
            preconditionFailure("fuzz invariant: the fast path accepted a request that the Codable path rejects: \(error)")
        }
        FuzzEntryPoints.check(fast.model == slow.model, "the fast path read model \(fast.model), the Codable path \(slow.model)")
        FuzzEntryPoints.check(fast.stream == slow.stream, "the fast and Codable paths disagree on 'stream'")
        FuzzEntryPoints.check(fast.includeUsage == slow.includeUsage, "the fast and Codable paths disagree on 'include_usage'")
        FuzzEntryPoints.check(
            normalized(fast.request) == normalized(slow.request),
            "the fast path read \(fast.request), the Codable path \(slow.request)"
        )
    }

    /// The request with every integral `Double` in its free-form values written as an `Int` (the fast path keeps
    /// `1.0` a double, `JSONValue`'s `Codable` reads it as an integer).
    private static func normalized(_ request: ChatRequest) -> ChatRequest {
        var request = request
        request.tools = request.tools.map { tool in
            var tool = tool
            tool.parameters = normalized(tool.parameters)
            return tool
        }
        if case .jsonSchema(let name, let schema, let strict) = request.responseFormat {
            request.responseFormat = .jsonSchema(name: name, schema: normalized(schema), strict: strict)
        }
        return request
    }

    private static func normalized(_ value: JSONValue) -> JSONValue {
        switch value {
        case .double(let number) where number == number.rounded() && abs(number) < 9.0e18:
            return .int(Int(number))
        case .array(let elements):
            return .array(elements.map(normalized))
        case .object(let members):
            return .object(members.mapValues(normalized))
        default:
            return value
        }
    }
}
