import AsyncHTTPClient
import Foundation
import LLMFallback
import LLMFallbackTesting
import Logging
import NIOCore
import NIOHTTP1
import Testing

@testable import LLMFallbackGateway

/// Issue 11, the gateway's part: it fails closed, it is bounded, its errors disclose nothing internal, and no
/// number from an upstream can make it trap.
@Suite("Hardening: fail closed, bounded, discreet")
struct HardeningTests {
    // MARK: - Fail closed

    @Test("an empty API key is a configuration error, not authentication turned off")
    func emptyKeyIsAnError() throws {
        for keys in [[""], ["a-real-key", ""]] {
            let configuration = GatewayConfiguration(apiKeys: keys)
            #expect(throws: GatewayConfigurationError.self) {
                try Gateway(chains: [:], configuration: configuration, logger: Logger(label: "test"))
            }
            do {
                try configuration.validate()
                Issue.record("validate accepted \(keys.count) keys with an empty one")
            } catch {
                #expect(error.code == .emptyAPIKey)
                #expect(error.message.contains("apiKeys[\(keys.count - 1)]"))
            }
            #expect(throws: GatewayConfigurationError.self) { try APIKeyAuthenticator(keys: keys) }
        }
        #expect(throws: GatewayConfigurationError.self) {
            try GatewayConfiguration(apiKeys: ["key with space"]).validate()
        }
        #expect(throws: GatewayConfigurationError.self) {
            try GatewayConfiguration(apiKeys: ["key\r\nx-injected: 1"]).validate()
        }
    }

    @Test("a non-loopback address without keys needs allowUnauthenticated")
    func publicAddressNeedsKeys() throws {
        for host in ["0.0.0.0", "::", "192.168.1.20", "gateway.internal"] {
            do {
                try GatewayConfiguration(host: host).validate()
                Issue.record("\(host) without keys was accepted")
            } catch {
                #expect(error.code == .unauthenticatedPublicAddress)
                #expect(error.message.contains(host))
            }
            try GatewayConfiguration(host: host, allowUnauthenticated: true).validate()
            try GatewayConfiguration(host: host, apiKeys: ["k-1"]).validate()
        }
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"] {
            #expect(GatewayConfiguration(host: host).isLoopback, "\(host)")
            try GatewayConfiguration(host: host).validate()
        }
        for host in ["127.0.0.1.evil.com", "1127.0.0.1", "127.0.0", "0.0.0.0"] {
            #expect(!GatewayConfiguration(host: host).isLoopback, "\(host)")
        }
    }

    @Test("limits and durations out of range are configuration errors")
    func invalidLimits() {
        var configuration = GatewayConfiguration()
        configuration.limits.maxConcurrentRequests = 0
        #expect(throws: GatewayConfigurationError.self) { try configuration.validate() }
        configuration = GatewayConfiguration()
        configuration.limits.requestBodyTimeout = .seconds(100_000_000_000)
        #expect(throws: GatewayConfigurationError.self) { try configuration.validate() }
        configuration = GatewayConfiguration()
        configuration.limits.requestHeaderTimeout = .zero
        #expect(throws: GatewayConfigurationError.self) { try configuration.validate() }
        configuration = GatewayConfiguration()
        configuration.idleTimeout = .seconds(-1)
        #expect(throws: GatewayConfigurationError.self) { try configuration.validate() }
    }

    @Test("the start-up log says plainly when authentication is off, and when it is on")
    func startupSaysWhenAuthenticationIsOff() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { _, gateway in
            #expect(gateway.logs.all.contains { $0.hasPrefix("warning authentication is OFF") }, "\(gateway.logs.all)")
        }
        var configuration = GatewayConfiguration()
        configuration.apiKeys = ["gw-key-STARTUP-SECRET"]
        try await withGateway(configuration: configuration, chains: { ["default": mockChain(on: $0)] }) { _, gateway in
            #expect(gateway.logs.all.contains { $0.contains("authentication: on, 1 API key") })
            #expect(!gateway.logs.all.contains { $0.contains("STARTUP-SECRET") })
        }
    }

    @Test("keys never appear in descriptions, dump() or other reflection")
    func keysNeverReflected() throws {
        var configuration = GatewayConfiguration(host: "0.0.0.0", port: 9000)
        configuration.apiKeys = ["gw-key-REFLECTED-SECRET", "gw-key-SECOND-SECRET"]
        let chain = FallbackChain([Provider("openai", model: "gpt-4o", apiKey: "sk-PROVIDER-SECRET")])
        let gateway = try Gateway(chains: ["default": chain], configuration: configuration, logger: Logger(label: "t"))
        var texts: [String] = []
        for subject in [configuration as Any, gateway as Any, gateway.core as Any] {
            var dumped = ""
            dump(subject, to: &dumped)
            texts.append(dumped)
            texts.append(String(describing: subject))
            texts.append(String(reflecting: subject))
            texts.append(Mirror(reflecting: subject).children.map { "\($0.label ?? ""): \($0.value)" }.joined())
        }
        for text in [gateway.core.authenticator, gateway.core.redactor].map({ subject -> String in
            var dumped = ""
            dump(subject, to: &dumped)
            return dumped + String(describing: subject)
        }) {
            texts.append(text)
        }
        for text in texts {
            #expect(!text.contains("SECRET"), "\(text)")
        }
        #expect(texts[0].contains("0.0.0.0"))
        #expect(texts[0].contains("2 redacted"))
    }

    // MARK: - Bounded

    @Test("beyond maxConcurrentRequests a completion is refused at once: 503, Retry-After, OpenAI's format")
    func requestLimit() async throws {
        var configuration = GatewayConfiguration()
        configuration.limits.maxConcurrentRequests = 2
        try await withGateway(configuration: configuration, chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", [.delayed(.seconds(5), .text("one")), .delayed(.seconds(5), .text("two"))])
            let holders = [
                Task { try await gateway.chat("default") },
                Task { try await gateway.chat("default") },
            ]
            try await server.waitForRequests(2, model: "model-primary")
            let started = ContinuousClock.now
            let refused = try await gateway.chat("default")
            #expect(ContinuousClock.now - started < .seconds(3), "refused at once, not queued")
            #expect(refused.status == 503)
            #expect(refused.headers.first(name: "retry-after") == "1")
            #expect(refused.errorCode == "gateway_overloaded")
            #expect(refused.error["type"] as? String == "server_error")
            #expect(refused.error.keys.sorted() == ["code", "message", "param", "type"])
            #expect(server.requests.count == 2, "the refused request never went upstream")
            // Other routes are not limited.
            #expect(try await gateway.send(.GET, "/health").status == 200)
            #expect(try await gateway.send(.GET, "/v1/models").status == 200)
            for holder in holders {
                #expect(try await holder.value.status == 200)
            }
            // The places are back once the answers were given.
            server.script("model-primary", .text("again"))
            #expect(try await gateway.chat("default").status == 200)
        }
    }

    @Test("beyond maxOpenStreams a stream is refused at once while completions still pass")
    func streamLimit() async throws {
        var configuration = GatewayConfiguration()
        configuration.limits.maxOpenStreams = 1
        try await withGateway(configuration: configuration, chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            let words = (1...100).map { "w\($0)" }.joined(separator: " ")
            server.script("model-primary", [.chunkDelay(.milliseconds(100), .text(words)), .text("plain")])
            var request = HTTPClientRequest(url: gateway.baseURL + "/v1/chat/completions")
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: chatBody("default", stream: true)))
            let response = try await gateway.client.execute(request, timeout: .seconds(30))
            var events = EventReader(response)
            #expect(try await events.next() != nil, "the first stream is open")

            let refused = try await gateway.chat("default", stream: true)
            #expect(refused.status == 503)
            #expect(refused.errorCode == "gateway_overloaded")
            #expect(refused.headers.first(name: "retry-after") == "1")
            #expect(try await gateway.chat("default").status == 200, "a completion has a place of its own")
        }
    }

    @Test("a client trickling its request head is cut after the header timeout")
    func slowHeader() async throws {
        var configuration = GatewayConfiguration()
        configuration.limits.requestHeaderTimeout = .seconds(1)
        configuration.limits.requestBodyTimeout = .seconds(30)
        configuration.idleTimeout = .seconds(60)
        try await withGateway(configuration: configuration, chains: { ["default": mockChain(on: $0)] }) { _, gateway in
            let socket = try await RawSocket.connect(port: gateway.port)
            let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: " + String(repeating: "a", count: 200)
            // A byte every 100 ms: each resets a per-read idle timer, but not a total.
            let cut = await socket.trickle(Array(head.utf8), interval: .milliseconds(100))
            let after = try #require(cut, "the connection was never cut")
            #expect(after >= .milliseconds(900))
            #expect(after < .seconds(10))
        }
    }

    @Test("a client trickling its request body is cut after the body timeout, and gives its place back")
    func slowBody() async throws {
        var configuration = GatewayConfiguration()
        configuration.limits.requestHeaderTimeout = .seconds(5)
        configuration.limits.requestBodyTimeout = .seconds(1)
        configuration.limits.maxConcurrentRequests = 1
        try await withGateway(configuration: configuration, chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            let body = chatBody("default")
            let socket = try await RawSocket.connect(port: gateway.port)
            let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                + "content-length: \(body.utf8.count + 200)\r\n\r\n"
            #expect(await socket.send(head))
            let cut = await socket.trickle(Array(body.utf8) + Array(repeating: UInt8(ascii: " "), count: 200), interval: .milliseconds(100))
            let after = try #require(cut, "the connection was never cut")
            #expect(after >= .milliseconds(800), "\(String(decoding: socket.received, as: UTF8.self))")
            #expect(after < .seconds(10))
            #expect(server.requests.isEmpty)
            // The only place is free again: the handler saw the body end when the connection closed.
            let answer = try await eventually("the place to be given back") {
                let answer = try await gateway.chat("default")
                return answer.status == 503 ? nil : answer
            }
            #expect(answer.status == 200)
        }
    }

    @Test("a 413 is read by a client that sends its whole body before reading (as urllib does)")
    func bodyTooLargeSentWhole() async throws {
        var configuration = GatewayConfiguration()
        configuration.maxBodySize = 1024
        try await withGateway(configuration: configuration, chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            for chunked in [false, true] {
                let socket = try await RawSocket.connect(port: gateway.port)
                // Far more than the socket buffers hold: the gateway must keep reading after it answered.
                let body = [UInt8](repeating: UInt8(ascii: "x"), count: 32 << 20)
                var request = "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                var payload: [UInt8]
                if chunked {
                    request += "transfer-encoding: chunked\r\n\r\n"
                    payload = []
                    for start in stride(from: 0, to: body.count, by: 65_536) {
                        let piece = body[start..<min(start + 65_536, body.count)]
                        payload += Array("\(String(piece.count, radix: 16))\r\n".utf8) + piece + Array("\r\n".utf8)
                    }
                    payload += Array("0\r\n\r\n".utf8)
                } else {
                    request += "content-length: \(body.count)\r\n\r\n"
                    payload = body
                }
                #expect(await socket.send(Array(request.utf8) + payload), "the whole body was taken (chunked: \(chunked))")
                let (text, closed) = await socket.readToEnd()
                #expect(text.hasPrefix("HTTP/1.1 413"), "chunked: \(chunked): \(text.prefix(200))")
                #expect(text.lowercased().contains("connection: close"))
                #expect(text.contains("request_too_large"))
                #expect(closed, "the gateway closes the connection after the answer")
            }
            #expect(server.requests.isEmpty)
            #expect(try await gateway.chat("default").status == 200)
        }
    }

    @Test("a refused body that never ends is dropped after the lingering timeout")
    func lingeringIsBounded() async throws {
        var configuration = GatewayConfiguration()
        configuration.maxBodySize = 1024
        configuration.limits.lingeringCloseTimeout = .seconds(1)
        try await withGateway(configuration: configuration, chains: { ["default": mockChain(on: $0)] }) { _, gateway in
            let socket = try await RawSocket.connect(port: gateway.port)
            let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000000\r\n\r\n"
            #expect(await socket.send(head))
            // 64 KiB every 50 ms: the body would take hours; the gateway stops reading after about a second.
            let cut = await socket.trickleChunks(count: 400, size: 65_536, interval: .milliseconds(50))
            let after = try #require(cut, "the connection was never closed")
            #expect(after < .seconds(15))
        }
    }

    // MARK: - Discreet errors

    @Test("a 502 names providers and error classes, not upstream hosts, request ids or bodies")
    func errorsDiscloseNothing() async throws {
        let (refusing, closedPort) = try await RawSocket.boundWithoutListening()
        defer { withExtendedLifetime(refusing) {} }
        try await withMockLLMServer { server in
            var unreachable = Provider("unreachable", model: "m", apiKey: secretKey, baseURL: "http://127.0.0.1:\(closedPort)/v1", timeout: .seconds(10), maxRetries: 0)
            unreachable.name = "unreachable"
            let chain = { () -> FallbackChain in
                var configuration = FallbackChain.Configuration()
                configuration.retry.maxRetryAfterWait = .zero
                return FallbackChain(
                    [mockProvider("primary", model: "model-primary", on: server), unreachable],
                    configuration: configuration
                )
            }
            let internalText = "internal 10.9.8.7:8000 exploded while quoting the PROMPT-TEXT"
            for expose in [false, true] {
                server.script(
                    "model-primary",
                    .status(500, message: internalText, headers: ["x-request-id": "req-UPSTREAM-ID"])
                )
                var configuration = GatewayConfiguration()
                configuration.exposeUpstreamErrors = expose
                try await withGateway(configuration: configuration, chains: ["default": chain()]) { gateway in
                    let answer = try await gateway.chat("default")
                    #expect(answer.status == 502)
                    #expect(answer.errorCode == "all_providers_failed")
                    let message = answer.errorMessage
                    #expect(message.contains("primary: server_error (HTTP 500)"), "\(message)")
                    #expect(message.contains("unreachable: connection"), "\(message)")
                    #expect(message.contains("attempts:"))
                    for detail in ["10.9.8.7:8000", "PROMPT-TEXT", "req-UPSTREAM-ID"] {
                        #expect(message.contains(detail) == expose, "\(detail) exposed: \(expose): \(message)")
                    }
                    #expect(!answer.body.contains("SUPERSECRET"))
                    // The operator's log has the details either way, without keys.
                    let logged = gateway.logs.all.joined(separator: "\n")
                    #expect(logged.contains("PROMPT-TEXT"))
                    #expect(!logged.contains("SUPERSECRET"))
                }
            }
        }
    }

    // MARK: - No trap on upstream numbers

    @Test("a huge Retry-After neither traps /health/providers nor reaches the client unbounded")
    func hugeRetryAfter() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0, models: [("primary", "model-primary")])] }) { server, gateway in
            server.script("model-primary", .status(429, headers: ["retry-after": "1e16"]))
            let answer = try await gateway.chat("default")
            #expect(answer.status == 429)
            let retryAfter = try #require(answer.headers.first(name: "retry-after").flatMap { Int($0) })
            #expect(retryAfter >= 1 && retryAfter <= 86_400)
            let health = try await gateway.send(.GET, "/health/providers")
            #expect(health.status == 200)
            let provider = try #require(
                (((health.json["chains"] as? [String: Any])?["default"] as? [String: Any])?["providers"] as? [[String: Any]])?.first
            )
            let remaining = try #require(provider["retry_after_ms"] as? Int)
            #expect(remaining > 0)
        }
    }

    @Test("duration conversions in the gateway are total")
    func totalConversions() {
        let huge = Duration(secondsComponent: Int64.max, attosecondsComponent: 999_999_999_999_999_999) * 8
        #expect(InfoEncoder.wholeMilliseconds(huge) == Int(InfoEncoder.longestReported.components.seconds) * 1000)
        #expect(InfoEncoder.wholeMilliseconds(.seconds(-5)) == 0)
        #expect(InfoEncoder.wholeMilliseconds(.microseconds(1500)) == 2)
        #expect(InfoEncoder.milliseconds(huge).isFinite)
        #expect(GatewayError.seconds(huge) == 86_400)
        #expect(GatewayError.seconds(.seconds(-3)) == 1)
        #expect(GatewayError.seconds(.milliseconds(1500)) == 2)
        #expect(GatewayError.format(huge) == "86400s")
        #expect(Gateway.timeAmount(huge) == .nanoseconds(Int64.max))
        #expect(Gateway.timeAmount(.seconds(2)) == .seconds(2))
    }
}

/// Retries `attempt` until it returns a value, for a state the test cannot observe directly (a place given back
/// after a connection closed); fails after `limit`.
func eventually<T: Sendable>(
    _ what: String,
    within limit: Duration = .seconds(10),
    _ attempt: @escaping @Sendable () async throws -> T?
) async throws -> T {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if let value = try await attempt() { return value }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw GatewayTestError("timed out after \(limit): \(what)")
}
