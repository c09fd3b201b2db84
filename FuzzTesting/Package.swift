// swift-tools-version: 6.2
import PackageDescription

// libFuzzer targets for every parser of llm-fallback that reads bytes from outside: a package of its own, so
// `swift build` and `swift test` of the main package never build it. Build with `./do_build.sh`, run with
// `./run.sh` (see README.md). Each target is an executable whose `LLVMFuzzerTestOneInput` calls one
// `@_spi(Fuzzing)` entry point of the library (Sources/LLMFallback/Fuzzing/FuzzEntryPoints.swift, and the
// gateway's Sources/LLMFallbackGateway/FuzzEntryPoints.swift); the kept crashes under FailCases/ are replayed
// through the same entry points by `swift test` (Tests/LLMFallbackTests/FuzzFailCaseTests.swift).
let package = Package(
    name: "llm-fallback-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "llm-fallback", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // `LLVMFuzzerRunDriver`'s declaration, and the `fuzz(_:)` every target's main.swift calls.
        .target(name: "CFuzzDriver"),
        .target(name: "FuzzDriver", dependencies: ["CFuzzDriver"]),
    ]
)

/// The targets whose entry point is in the library.
let libraryTargets = [
    "FuzzSSE",
    "FuzzJSONReader",
    "FuzzFastJSON",
    "FuzzOpenAIResponseReader",
    "FuzzOpenAIResponse",
    "FuzzOpenAIStream",
    "FuzzOpenAIError",
    "FuzzAnthropicResponse",
    "FuzzAnthropicStream",
    "FuzzAnthropicError",
    "FuzzGeminiResponse",
    "FuzzGeminiStream",
    "FuzzGeminiError",
]

for name in libraryTargets {
    package.targets.append(
        .executableTarget(name: name, dependencies: ["FuzzDriver", .product(name: "LLMFallback", package: "llm-fallback")])
    )
}

package.targets.append(
    .executableTarget(
        name: "FuzzHTTPClient",
        dependencies: [
            "FuzzDriver",
            .product(name: "LLMFallback", package: "llm-fallback"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]
    )
)

package.targets.append(
    .executableTarget(
        name: "FuzzGatewayRequest",
        dependencies: ["FuzzDriver", .product(name: "LLMFallbackGateway", package: "llm-fallback")]
    )
)

// The config loader lives in the `llm-fallback` executable, which another package cannot import: this target
// compiles its `Config` folder itself, through the symbolic link Sources/FuzzConfig/Config.
package.targets.append(
    .executableTarget(
        name: "FuzzConfig",
        dependencies: [
            "FuzzDriver",
            .product(name: "LLMFallback", package: "llm-fallback"),
            // The config loader builds the gateway's configuration (`GatewayConfiguration` and its limits), and
            // the shared health store a `store: postgres` file names.
            .product(name: "LLMFallbackGateway", package: "llm-fallback"),
            .product(name: "LLMFallbackPostgres", package: "llm-fallback"),
            .product(name: "Yams", package: "Yams"),
        ]
    )
)

for target in package.targets {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
