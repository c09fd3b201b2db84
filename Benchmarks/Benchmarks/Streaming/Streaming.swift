// A 200-chunk OpenAI stream from the mock server on loopback (keep-alive):
//   direct  AsyncHTTPClientTransport.send + ServerSentEventParser + OpenAIStreamDecoder, no chain;
//   chain   FallbackChain.stream with one provider.
// Reports the time per stream (the difference over 200 is the chain's cost per chunk) and the time to the first
// chunk with content, as a custom metric in nanoseconds.
import Benchmark
import BenchmarkFixtures
import LLMFallback

let holder = FixtureHolder()

/// Time from the start of the call to the first chunk with content, in nanoseconds.
let timeToFirstChunk = BenchmarkMetric.custom(
    "Time to first chunk (ns)",
    polarity: .prefersSmaller,
    useScalingFactor: false
)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .instructions, timeToFirstChunk],
        warmupIterations: 20,
        scalingFactor: .one,
        maxDuration: .seconds(3),
        maxIterations: 10_000
    )
    Benchmark.setup = { try await holder.prepare() }

    Benchmark("Streaming: direct (transport + SSE parser + decoder)") { benchmark in
        let fixture = holder.fixture
        for _ in benchmark.scaledIterations {
            let start = ContinuousClock.now
            var first = Duration.zero
            blackHole(try await fixture.directStream { first = ContinuousClock.now - start })
            benchmark.measurement(timeToFirstChunk, nanoseconds(first))
        }
    }

    Benchmark("Streaming: chain.stream, one provider") { benchmark in
        let fixture = holder.fixture
        for _ in benchmark.scaledIterations {
            let start = ContinuousClock.now
            var first = Duration.zero
            blackHole(try await fixture.chainStream { first = ContinuousClock.now - start })
            benchmark.measurement(timeToFirstChunk, nanoseconds(first))
        }
    }
}

func nanoseconds(_ duration: Duration) -> Int {
    let (seconds, attoseconds) = duration.components
    return Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
}
