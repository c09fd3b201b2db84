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

    /// Decodes a `POST /v1/chat/completions` body as the gateway does and, when it is accepted, checks the
    /// fidelity promise: the body an OpenAI provider is sent holds the client's members, in order, with only
    /// `model`, `stream` and `stream_options` changed.
    ///
    /// The input is the request body.
    public static func chatCompletionRequest(_ input: UnsafeRawBufferPointer) {
        let body = ByteBuffer(bytes: input)
        let decoded: ChatCompletionRequest
        do {
            decoded = try ChatCompletionRequest.decode(body)
        } catch {
            // The message goes back to the client.
            _ = "\(error)"
            return
        }
        guard let passthrough = decoded.request.passthrough else {
            preconditionFailure("fuzz invariant: a decoded request has no passthrough body")
        }
        let provider = ResolvedProvider(
            provider: Provider("openai", model: "fuzz-model", apiKey: "k", baseURL: "http://127.0.0.1:1/v1"),
            kind: ProviderKind.named("openai")!, baseURL: "http://127.0.0.1:1/v1", apiKey: "k")
        guard let parts = try? OpenAIAdapter().makeRequest(decoded.request, for: provider, stream: false),
            let sentBody = parts.body, case .object(let sent)? = try? JSONValue(parsing: sentBody)
        else {
            preconditionFailure("fuzz invariant: the passthrough body of an accepted request cannot be sent")
        }
        var expected = passthrough.body
        expected.removeValue(forKey: "stream")
        expected.removeValue(forKey: "stream_options")
        var got = sent
        for key in ["model", "max_tokens", "max_completion_tokens"] {
            expected.removeValue(forKey: key)
            got.removeValue(forKey: key)
        }
        FuzzEntryPoints.check(got == expected, "the passthrough body changed on its way to the provider")
    }
}
