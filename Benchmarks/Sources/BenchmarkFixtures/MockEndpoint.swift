import LLMFallbackTesting

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The models the mock server is scripted with, and where the benchmarks find it.
///
/// `scripts/bench.sh` runs the server in a process of its own (`BenchMockServer`) and passes its URL in
/// `LLMFB_BENCH_MOCK_URL`, so that the allocations and CPU the benchmarks measure are the client's alone. Without the
/// variable (a plain `swift package benchmark`) the server is started in the benchmark process itself, and its
/// allocations are counted with the client's.
public enum MockEndpoint {
    /// Answers every request with ``Fixtures/answerText`` (streamed one word per chunk).
    public static let answerModel = "bench-answer"
    /// Fails every request with HTTP 500.
    public static let failingModel = "bench-fail"
    /// Streams ``streamChunks`` chunks.
    public static let streamModel = "bench-stream"
    /// The content chunks of a stream from ``streamModel``.
    public static let streamChunks = 200

    /// The environment variable holding the external server's root URL.
    public static let environmentVariable = "LLMFB_BENCH_MOCK_URL"

    /// Applies the benchmark scripts to `server`.
    public static func configure(_ server: MockLLMServer) {
        server.script(answerModel, .text(Fixtures.answerText, usage: (prompt: 412, completion: 158)))
        server.script(failingModel, .status(500))
        let streamed = Fixtures.words(streamChunks).joined()
        let streamUsage = (prompt: 412, completion: streamChunks)
        server.script(streamModel, .text(streamed, chunks: streamChunks, usage: streamUsage))
    }

    /// The root URL of the server to benchmark against: the external one when `LLMFB_BENCH_MOCK_URL` is set,
    /// otherwise one started in this process (once).
    public static func baseURL() async throws -> String {
        if let value = getenv(environmentVariable), let url = String(validatingCString: value), !url.isEmpty {
            return url
        }
        return try await InProcess.shared.baseURL()
    }

    /// Whether the server runs in another process.
    public static var isExternal: Bool {
        getenv(environmentVariable) != nil
    }

    private actor InProcess {
        static let shared = InProcess()
        private var server: MockLLMServer?

        func baseURL() async throws -> String {
            if let server { return server.baseURL }
            let server = try await MockLLMServer.start()
            MockEndpoint.configure(server)
            self.server = server
            return server.baseURL
        }
    }
}
