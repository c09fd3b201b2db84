import Foundation
import NIOCore
import NIOFoundationCompat

/// The `Codable` way of reading and writing each format's bodies, as the adapters did before the package's JSON
/// toolkit: the baselines `scripts/bench.sh` measures the hand-written paths against, in the same run.
///
/// Not API: the `Benchmarking` SPI exists for the benchmarks package.
@_spi(Benchmarking)
public enum CodablePaths {
    /// Decodes a response body with `JSONDecoder` into the format's wire type, as the adapters' fallback does.
    public static func decodeResponse(_ body: ByteBuffer, format: WireFormat) throws {
        let data = Data(buffer: body)
        switch format {
        case .anthropic: _ = try WireJSON.decoder.decode(AnthropicMessageWire.self, from: data)
        case .gemini: _ = try WireJSON.decoder.decode(GeminiResponseWire.self, from: data)
        default: _ = try WireJSON.decoder.decode(OpenAICompletion.self, from: data)
        }
    }

    /// The body the adapter sends for `request`, as a value, for ``encode(_:)``.
    public static func requestValue(_ request: ChatRequest, for provider: ResolvedProvider) throws -> JSONValue {
        let parts = try provider.kind.wireFormat.adapter.makeRequest(request, for: provider, stream: false)
        guard let body = parts.body else { return .null }
        return try JSONParser.parse(body)
    }

    /// Writes `value` with `JSONEncoder`: the writing alone, without the mapping of the request that the adapter's
    /// own path includes, so the ratio against it is conservative.
    public static func encode(_ value: JSONValue) throws -> Data {
        try WireJSON.encoder.encode(value)
    }
}
