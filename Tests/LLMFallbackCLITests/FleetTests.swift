import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LLMFallbackTesting
import PostgresTestSupport
import Testing

/// Two `llm-fallback serve` processes sharing provider health through one PostgreSQL (issue 16): what one gateway
/// learns, the other acts on without sending the provider a request of its own.
@Suite("two gateways, one health store", .serialized, .enabled(if: TestPostgres.isAvailable, Comment(rawValue: TestPostgres.skipReason)))
struct FleetTests {
    /// In the database URL, which the server (trust authentication) never asks for: it must never be printed.
    static let password = "pw-FLEET-never-print-me"

    /// Four chains on `server`, each a provider that will fail (`primary`, `limited`, `down-while-db-down`,
    /// `after-db-back`) and the shared healthy `backup`. The first chain's period is two seconds (longer on a run
    /// that says it is slow, ``TestTime``), the others' ten minutes; a failed probe doubles them.
    static func config(_ server: MockLLMServer, instance: String) -> String {
        // Only the first chain's period must pass within the test; the others' must not (a probe there would be a
        // request the test says no gateway sends), however slow the machine.
        func chain(_ name: String, _ model: String, recovery: String = "10m") -> String {
            """
              \(name):
                strategy: ordered
                circuit_breaker: { failure_threshold: 2, recovery_timeout: \(recovery), max_recovery_timeout: 60m }
                providers:
                  - { name: openai, label: \(model), model: \(model), api_key: "${TEST_OPENAI_KEY}", base_url: "\(server.openAIBaseURL)", max_retries: 0, timeout: 30s }
                  - { name: openai, label: backup, model: backup, api_key: "${TEST_OPENAI_KEY}", base_url: "\(server.openAIBaseURL)", max_retries: 0, timeout: 30s }

            """
        }
        return "chains:\n" + chain("default", "primary", recovery: "\(2 * TestTime.scale)s") + chain("limited", "limited") + chain("outage", "down-while-db-down")
            + chain("after", "after-db-back")
            + """
            server: { port: 0 }
            health: { store: postgres, url: "${DATABASE_URL}", instance: \(instance) }
            """
    }

    @Test("A's open breaker keeps B off the primary; one probe for both; A's Retry-After holds for B; a database outage is survived and healed")
    func twoGateways() async throws {
        let postgres = try TestPostgres.start()
        defer { postgres.destroy() }
        try await withMockLLMServer { server in
            server.script("primary", .status(500))
            server.script("limited", .status(429, headers: ["retry-after": "30"]))
            server.script("down-while-db-down", .status(500))
            server.script("after-db-back", .status(500))
            var environment = CommandRunner.keyEnvironment
            environment["DATABASE_URL"] = postgres.url(password: Self.password)
            let outputs = try await withTwoGateways(
                configs: (Self.config(server, instance: "gateway-a"), Self.config(server, instance: "gateway-b")),
                environment: environment,
                secrets: [Self.password, CommandRunner.secretKey]
            ) { a, b in
                try await Self.scenario(a, b, server: server, postgres: postgres)
            }
            for output in outputs {
                #expect(!output.contains(Self.password), "the database password was printed")
                #expect(!output.contains("FLEET"), "part of the database password was printed")
                #expect(!output.contains("ZEBRA"), "a provider key was printed")
            }
        }
    }

    static func scenario(_ a: GatewayClient, _ b: GatewayClient, server: MockLLMServer, postgres: TestPostgres) async throws {
        try await eventually(.seconds(20), "both gateways connected to the store") {
            let connected = (try await a.storeConnected(), try await b.storeConnected())
            return connected.0 && connected.1
        }

        // 1. The primary fails for A until A's breaker opens (two failures); A answers from the backup meanwhile.
        // (The breaker opens after this reading, so time since it overstates how long it has been open.)
        let beforeOpening = ContinuousClock.now
        try await expectBackup(a, "default", times: 2)
        #expect(server.requests(for: "primary").count == 2)
        #expect(try await a.provider("default", "primary")?.state == "open")
        #expect(try await a.provider("default", "primary")?.learnedFrom == "local")

        // 2. B learns it from the store, and routes straight to the backup: the primary gets nothing from B.
        let opened = ContinuousClock.now
        try await eventually(.seconds(5), "B learns A's open breaker") {
            try await b.provider("default", "primary")?.state == "open"
        }
        print("two gateways: the open breaker reached B's /health/providers \(ContinuousClock.now - opened) after A's answer")
        let learned = try await b.provider("default", "primary")
        #expect(learned?.learnedFrom == "peer" && learned?.learnedFromInstance == "gateway-a", "\(String(describing: learned))")
        try await expectBackup(b, "default", times: 5)
        // Within the recovery timeout B must not touch the primary. On a machine so loaded that these requests
        // outlast it (the whole suite runs in parallel on two cores in CI), B's probe is due and step 3 counts it.
        if ContinuousClock.now - beforeOpening < .seconds(2 * TestTime.scale) {
            #expect(server.requests(for: "primary").count == 2, "B sent the primary a request")
        } else {
            print("two gateways: B's requests outlasted the recovery timeout; its probe is step 3's")
            #expect(server.requests(for: "primary").count <= 3, "B sent the primary more than a probe")
        }

        // 3. After the recovery timeout both keep sending requests, and exactly one probe goes to the primary
        //    (from one of the two), which fails and opens both again, for the next (doubled) period.
        try await eventually(.seconds(15), "one of the two probes the primary after the recovery timeout") {
            async let fromA = a.chat("default")
            async let fromB = b.chat("default")
            _ = try await (fromA, fromB)
            return server.requests(for: "primary").count >= 3
        }
        for _ in 0..<5 {
            async let fromA = a.chat("default")
            async let fromB = b.chat("default")
            _ = try await (fromA, fromB)
        }
        #expect(server.requests(for: "primary").count == 3, "more than one probe for both gateways")
        try await eventually(.seconds(5), "both open again after the failed probe") {
            let states = try await (a.provider("default", "primary")?.state, b.provider("default", "primary")?.state)
            return states == ("open", "open")
        }

        // 4. A Retry-After seen by A is honoured by B.
        try await expectBackup(a, "limited")
        #expect(server.requests(for: "limited").count == 1)
        try await eventually(.seconds(5), "B learns A's Retry-After") {
            try await (b.provider("limited", "limited")?.retryAfterMs ?? 0) > 20_000
        }
        #expect(try await b.provider("limited", "limited")?.learnedFrom == "peer")
        try await expectBackup(b, "limited", times: 3)
        #expect(server.requests(for: "limited").count == 1, "B sent a provider that asked to wait a request")

        // 5. The database stops: both keep answering, each on its own view. A learns of an outage meanwhile.
        try postgres.stop()
        #expect(await a.process.waitForOutput(containing: "health store unavailable", within: TestTime.scaled(.seconds(15))))
        #expect(await b.process.waitForOutput(containing: "health store unavailable", within: TestTime.scaled(.seconds(15))))
        try await expectBackup(a, "default")
        try await expectBackup(b, "default")
        try await expectBackup(a, "outage", times: 2)
        #expect(server.requests(for: "down-while-db-down").count == 2)
        #expect(try await a.provider("outage", "down-while-db-down")?.state == "open")
        #expect(try await b.provider("outage", "down-while-db-down")?.state == "closed")

        // 6. The database returns: both reconnect; B learns what A published after the outage (the transition
        //    waited in A's queue), and A learns what B sees from now on.
        try postgres.startServer()
        #expect(await a.process.waitForOutput(containing: "health store reconnected", within: TestTime.scaled(.seconds(20))))
        #expect(await b.process.waitForOutput(containing: "health store reconnected", within: TestTime.scaled(.seconds(20))))
        try await eventually(.seconds(5), "B learns the breaker A opened while the database was down") {
            try await b.provider("outage", "down-while-db-down")?.state == "open"
        }
        #expect(try await b.provider("outage", "down-while-db-down")?.learnedFrom == "peer")
        try await expectBackup(b, "outage", times: 3)
        #expect(server.requests(for: "down-while-db-down").count == 2, "B sent a provider A had found down a request")

        try await expectBackup(b, "after", times: 2)
        try await eventually(.seconds(5), "A learns the breaker B opened after the database came back") {
            try await a.provider("after", "after-db-back")?.state == "open"
        }
        #expect(try await a.provider("after", "after-db-back")?.learnedFromInstance == "gateway-b")
        try await expectBackup(a, "after", times: 3)
        #expect(server.requests(for: "after-db-back").count == 2)
    }
}

/// Asks `chain` of `client` `times` times and expects each answer from the backup.
func expectBackup(_ client: GatewayClient, _ chain: String, times: Int = 1, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    for _ in 0..<times {
        let answer = try await client.chat(chain)
        #expect(answer == "backup", "\(chain) on :\(client.port)", sourceLocation: sourceLocation)
    }
}

/// Runs two gateway processes for `body` and returns what each printed. Both are always stopped (SIGTERM, then
/// SIGKILL), whatever `body` does; when it fails, the end of each one's output is printed, with `secrets` blotted.
func withTwoGateways(
    configs: (String, String),
    environment: [String: String],
    secrets: [String],
    _ body: (GatewayClient, GatewayClient) async throws -> Void
) async throws -> [String] {
    let paths = (try CommandRunner.writeConfig(configs.0), try CommandRunner.writeConfig(configs.1))
    let a = try ServeProcess(["serve", "--config", paths.0, "--grace-period", "1s"], environment: environment)
    var b: ServeProcess?
    do {
        b = try ServeProcess(["serve", "--config", paths.1, "--grace-period", "1s"], environment: environment)
        guard let b, await a.waitForOutput(containing: "listening on http://127.0.0.1:", within: TestTime.scaled(.seconds(60))), let portA = a.port,
            await b.waitForOutput(containing: "listening on http://127.0.0.1:", within: TestTime.scaled(.seconds(60))), let portB = b.port
        else {
            throw TestPostgresError("a gateway did not start")
        }
        try await body(GatewayClient(process: a, port: portA), GatewayClient(process: b, port: portB))
    } catch {
        let outputs = [await a.stop(), await b?.stop() ?? ""]
        for (name, output) in zip(["A", "B"], outputs) {
            let shown = secrets.reduce(String(output.suffix(3_000))) { $0.replacingOccurrences(of: $1, with: "<secret>") }
            print("gateway \(name)'s output (its end):\n\(shown)")
        }
        throw error
    }
    return [await a.stop(), await b?.stop() ?? ""]
}

/// One gateway's routes, through URLSession.
struct GatewayClient: Sendable {
    let process: ServeProcess
    let port: Int

    /// A provider's line of `/health/providers`.
    struct ProviderState: Sendable, CustomStringConvertible {
        var state: String
        var retryAfterMs: Int?
        var learnedFrom: String
        var learnedFromInstance: String?
        var description: String { "\(state), retry after \(retryAfterMs.map(String.init) ?? "-") ms, learned from \(learnedFrom) \(learnedFromInstance ?? "")" }
    }

    /// Asks `chain` once; returns the model that answered (`x-llm-fallback-model`; each provider here has its own).
    func chat(_ chain: String) async throws -> String {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/v1/chat/completions")!)
        request.httpMethod = "POST"
        request.httpBody = Data(#"{"model":"\#(chain)","messages":[{"role":"user","content":"Hi"}]}"#.utf8)
        request.setValue("application/json", forHTTPHeaderField: "content-type")
        request.timeoutInterval = 60
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        guard http?.statusCode == 200 else {
            return "status \(http?.statusCode ?? 0): \(String(decoding: data, as: UTF8.self).prefix(300))"
        }
        return http?.value(forHTTPHeaderField: "x-llm-fallback-model") ?? "no model header"
    }

    /// `provider` of `chain` as `/health/providers` shows it.
    func provider(_ chain: String, _ provider: String) async throws -> ProviderState? {
        let object = try JSONSerialization.jsonObject(with: try await get("/health/providers"))
        let chains = (object as? [String: Any])?["chains"] as? [String: Any]
        let providers = (chains?[chain] as? [String: Any])?["providers"] as? [[String: Any]] ?? []
        guard let line = providers.first(where: { $0["name"] as? String == provider }) else { return nil }
        return ProviderState(
            state: line["state"] as? String ?? "?",
            retryAfterMs: line["retry_after_ms"] as? Int,
            learnedFrom: line["learned_from"] as? String ?? "?",
            learnedFromInstance: line["learned_from_instance"] as? String
        )
    }

    /// Whether `/metrics` says the health store is connected.
    func storeConnected() async throws -> Bool {
        let text = String(decoding: try await get("/metrics"), as: UTF8.self)
        return text.split(separator: "\n").contains { line in
            line.hasPrefix("llm_fallback_health_store_connected ") && (line.hasSuffix(" 1") || line.hasSuffix(" 1.0"))
        }
    }

    private func get(_ path: String) async throws -> Data {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.timeoutInterval = 30
        let (data, _) = try await URLSession.shared.data(for: request)
        return data
    }
}
