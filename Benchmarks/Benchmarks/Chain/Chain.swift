// The cost of the chain around one non-streamed call, against a mock server on loopback (keep-alive):
//   direct    adapter.makeRequest + AsyncHTTPClientTransport.send + collect + adapter.decodeResponse, no chain;
//   chain     FallbackChain with one provider that answers;
//   failover  FallbackChain whose first provider fails fast (HTTP 500, no retry, breaker disabled) and whose
//             second answers: one failover, so two HTTP exchanges.
// scripts/bench.sh prints the ratios chain/direct and failover/direct from the same run.
import Benchmark
import BenchmarkFixtures
import LLMFallback

let holder = FixtureHolder()

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .instructions],
        warmupIterations: 50,
        scalingFactor: .one,
        maxDuration: .seconds(3),
        maxIterations: 20_000
    )
    Benchmark.setup = { try await holder.prepare() }

    Benchmark("Chain: direct (adapter + transport, no chain)") { benchmark in
        let fixture = holder.fixture
        for _ in benchmark.scaledIterations {
            blackHole(try await fixture.direct())
        }
    }

    Benchmark("Chain: chain, one provider") { benchmark in
        let fixture = holder.fixture
        for _ in benchmark.scaledIterations {
            blackHole(try await fixture.chain())
        }
    }

    Benchmark("Chain: chain, one failover (500 then answer)") { benchmark in
        let fixture = holder.fixture
        for _ in benchmark.scaledIterations {
            blackHole(try await fixture.failover())
        }
    }
}
