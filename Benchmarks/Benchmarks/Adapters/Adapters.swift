// The wire formats alone, without I/O: encoding a realistic request, decoding a realistic response body, and
// decoding a 500-chunk stream fed in 1 KB buffers through the SSE parser and the format's stream decoder, as the
// chain reads a stream. The SSE parser alone on the same bytes tells the parser's share from the decoder's.
import Benchmark
import BenchmarkFixtures
@_spi(Benchmarking) import LLMFallback
import NIOCore
import NIOHTTP1

/// The number of content chunks of the decoded streams.
let streamChunks = 500

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .instructions],
        warmupIterations: 10,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 1_000_000
    )

    for format in BenchFormat.allCases {
        let adapter = format.adapter
        let provider = try! format.resolvedProvider()
        let request = Fixtures.request
        let body = Fixtures.responseBody(format)
        let headers: HTTPHeaders = ["content-type": "application/json"]
        let buffers = Fixtures.streamBuffers(format, chunks: streamChunks)
        // Content events, plus OpenAI's role, finish, usage and [DONE] events, or Anthropic's message_start,
        // content_block_start, ping, content_block_stop, message_delta and message_stop.
        let events = streamChunks + (format == .anthropic ? 6 : format == .openAI ? 4 : 0)

        Benchmark(
            "\(format.rawValue): encode request",
            configuration: .init(setup: {
                let parts = try adapter.makeRequest(request, for: provider, stream: false)
                guard let bytes = parts.body?.readableBytes, bytes > 1_000 else {
                    throw BenchError("\(format) request body has \(parts.body?.readableBytes ?? 0) bytes")
                }
            })
        ) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try adapter.makeRequest(request, for: provider, stream: false))
            }
        }

        Benchmark(
            "\(format.rawValue): encode request, JSONEncoder baseline",
            configuration: .init(setup: {})
        ) { benchmark in
            let value = try CodablePaths.requestValue(request, for: provider)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(try CodablePaths.encode(value))
            }
        }

        Benchmark(
            "\(format.rawValue): decode response, JSONDecoder baseline",
            configuration: .init(setup: {
                try CodablePaths.decodeResponse(body, format: provider.kind.wireFormat)
            })
        ) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try CodablePaths.decodeResponse(body, format: provider.kind.wireFormat))
            }
        }

        Benchmark(
            "\(format.rawValue): decode response",
            configuration: .init(setup: {
                let response = try adapter.decodeResponse(body, headers: headers, for: provider)
                guard response.content == Fixtures.answerText, response.usage != nil else {
                    throw BenchError("\(format) response decoded as \(response.content.prefix(60))")
                }
            })
        ) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try adapter.decodeResponse(body, headers: headers, for: provider))
            }
        }

        Benchmark(
            "\(format.rawValue): decode stream (\(streamChunks) chunks)",
            configuration: .init(setup: {
                let (chunks, complete) = try decodeStream(buffers, adapter: adapter, provider: provider)
                guard chunks == streamChunks, complete else {
                    throw BenchError("\(format) stream decoded \(chunks) content chunks (complete: \(complete))")
                }
            })
        ) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try decodeStream(buffers, adapter: adapter, provider: provider))
            }
        }

        Benchmark(
            "\(format.rawValue): SSE parser only (\(streamChunks) chunks)",
            configuration: .init(setup: {
                let parsed = try parseEvents(buffers)
                guard parsed == events else {
                    throw BenchError("\(format) stream parsed into \(parsed) events, expected \(events)")
                }
            })
        ) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try parseEvents(buffers))
            }
        }
    }
}

/// Feeds `buffers` to a new parser and the format's decoder, as `FallbackChain` reads a stream.
///
/// - Returns: The number of chunks with content, and whether the format's terminator arrived.
@inline(never)
func decodeStream(
    _ buffers: [ByteBuffer],
    adapter: any ProviderAdapter,
    provider: ResolvedProvider
) throws -> (chunks: Int, complete: Bool) {
    var parser = ServerSentEventParser()
    var decoder = adapter.makeStreamDecoder(for: provider)
    var events: [ServerSentEvent] = []
    var chunks = 0
    for buffer in buffers {
        events.removeAll(keepingCapacity: true)
        try parser.feed(buffer, into: &events)
        for event in events {
            if let chunk = try decoder.decode(event), chunk.hasContent {
                chunks += 1
            }
        }
        if decoder.isComplete { break }
    }
    return (chunks, decoder.isComplete)
}

/// Feeds `buffers` to a new parser.
///
/// - Returns: The number of events parsed.
@inline(never)
func parseEvents(_ buffers: [ByteBuffer]) throws -> Int {
    var parser = ServerSentEventParser()
    var events: [ServerSentEvent] = []
    var count = 0
    for buffer in buffers {
        events.removeAll(keepingCapacity: true)
        try parser.feed(buffer, into: &events)
        count += events.count
    }
    return count
}
