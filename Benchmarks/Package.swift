// swift-tools-version: 6.2
import PackageDescription

// The benchmarks of llm-fallback: a package of its own, so `swift test` of the main package never builds
// ordo-one/benchmark. Run them with `scripts/bench.sh` (or `swift package benchmark` in this folder).
let package = Package(
    name: "llm-fallback-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "llm-fallback", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // Fixtures and the direct (chain-less) client paths the benchmarks compare against.
        .target(
            name: "BenchmarkFixtures",
            dependencies: [
                .product(name: "LLMFallback", package: "llm-fallback"),
                .product(name: "LLMFallbackTesting", package: "llm-fallback"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The mock server in a process of its own, so that the benchmarks measure the client alone.
        .executableTarget(
            name: "BenchMockServer",
            dependencies: [
                "BenchmarkFixtures",
                .product(name: "LLMFallbackTesting", package: "llm-fallback"),
            ]
        ),
        // Issue 5: tail latency of ordered vs latency routing, with and without hedging, against a provider that is
        // slow 10% of the time. A plain executable, not a benchmark-plugin suite; run it with scripts/routing-scenario.sh.
        .executableTarget(
            name: "RoutingScenario",
            dependencies: [
                .product(name: "LLMFallback", package: "llm-fallback"),
                .product(name: "LLMFallbackTesting", package: "llm-fallback"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The chain's overhead over a direct call as a plain executable, for profilers (perf, heaptrack, callgrind)
        // and quick A/B runs: rounds of direct and chain calls interleaved in one process. scripts/profile-chain.sh.
        .executableTarget(
            name: "ChainProfile",
            dependencies: [
                "BenchmarkFixtures",
                .product(name: "LLMFallback", package: "llm-fallback"),
            ]
        ),
        // Issue 13: requests upstream per client request while every provider is down (503 or hanging), for a
        // chain of one and of three providers at concurrency 64, and how soon a provider back from a 6 s outage is
        // used again. A plain executable; scripts/outage-scenario.sh runs it against the engine before and after.
        .executableTarget(
            name: "OutageScenario",
            dependencies: [
                .product(name: "LLMFallback", package: "llm-fallback"),
                .product(name: "LLMFallbackTesting", package: "llm-fallback"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)

// One executable per suite, under Benchmarks/<Name>/, as the benchmark plugin expects.
for name in ["Adapters", "Chain", "Streaming"] {
    package.targets.append(
        .executableTarget(
            name: name,
            dependencies: [
                "BenchmarkFixtures",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "LLMFallback", package: "llm-fallback"),
                .product(name: "LLMFallbackTesting", package: "llm-fallback"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Benchmarks/\(name)",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
}

for target in package.targets {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
