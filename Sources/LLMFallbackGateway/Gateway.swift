import Hummingbird
import HummingbirdCore
import LLMFallback
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// An OpenAI- and Anthropic-compatible HTTP gateway in front of ``FallbackChain``s: point any OpenAI client, or
/// Claude Code and the `anthropic` SDKs (`ANTHROPIC_BASE_URL`), at it and get failover, circuit breakers and routing
/// with no code change.
///
/// Each chain is served as a model: a request's `model` names the chain that answers it.
///
/// ```swift
/// GatewayMetrics.bootstrap()   // before building chains, so their counters reach /metrics
/// let chain = FallbackChain([
///     Provider("openai", model: "gpt-4o"),
///     Provider("anthropic", model: "claude-3-5-sonnet-20241022"),
/// ])
/// let gateway = try Gateway(
///     chains: ["default": chain],
///     configuration: GatewayConfiguration(host: "127.0.0.1", port: 8080, apiKeys: ["my-gateway-key"]),
///     logger: Logger(label: "llm-fallback.gateway")
/// )
/// try await gateway.run()   // until SIGTERM or SIGINT
/// ```
///
/// ### Routes
///
/// | route | what |
/// | --- | --- |
/// | `POST /v1/chat/completions` | OpenAI Chat Completions, streamed (`"stream": true`) or not |
/// | `POST /v1/messages` | Anthropic Messages, streamed or not; errors in Anthropic's format, a `request-id` on every answer |
/// | `POST /v1/messages/count_tokens` | counted by the chain's healthy Anthropic provider, else an estimate (`x-llm-fallback-token-count`) |
/// | `GET /v1/models`, `GET /v1/models/{chain}` | the chains, in OpenAI's list format |
/// | `GET /health` | liveness; never needs a key |
/// | `GET /health/providers` | per chain and provider: breaker state, failures, latency, share |
/// | `GET /metrics` | Prometheus text: the gateway's own metrics and the library's |
///
/// The paths also answer without the `/v1` prefix, and with a query string (`/v1/messages?beta=true`).
///
/// ### The Anthropic surface
///
/// A Messages request for a provider that speaks Anthropic is sent as the client wrote it, only `model` changed,
/// with its `anthropic-version` and `anthropic-beta` headers; the answer, or the stream event by event, is relayed
/// as the provider sent it. For a provider of another format the request is translated through ``ChatRequest``
/// (what cannot be carried is named in `x-llm-fallback-dropped-params`) and the answer comes back in Anthropic's
/// shape and event grammar. A stream without content after ``GatewayConfiguration/streamKeepAlive`` gets its head,
/// a `message_start` and `ping`s.
///
/// ### Responses
///
/// A completion's `model` is the model that actually answered; the headers `x-llm-fallback-provider` (the provider
/// kind), `x-llm-fallback-model` and `x-llm-fallback-attempts` say who answered and after how many attempts. A
/// stream's head is sent once the chain produced its first chunk, so a failover before the first token is invisible
/// to the client and the headers name the provider that streams and the attempt it came from.
///
/// ### Errors
///
/// Errors use OpenAI's format, `{"error":{"message","type","param","code"}}`: `400` for a malformed body (saying
/// what was wrong) and for a provider's refusal of the request itself (invalid request, context length, content
/// filter: the provider's reason), `401` without a valid key, `404` for an unknown chain, `413` for a body over
/// ``GatewayConfiguration/maxBodySize``, `429` with `Retry-After` when every provider is rate limited, `502` with
/// the attempt trace when all providers failed, `503` when every circuit breaker is open and `503` with
/// `Retry-After: 1` (code `gateway_overloaded`) when ``GatewayConfiguration/limits`` has no place for the request.
/// An error after a stream started is sent as a last `data: {"error":{...}}` event with no `data: [DONE]`, never
/// as a clean end.
///
/// An error names the providers tried, their error classes and HTTP statuses; what the upstreams said (their error
/// text, request ids, the addresses they were reached at) goes to the log, and to clients only with
/// ``GatewayConfiguration/exposeUpstreamErrors``.
///
/// ### Mid-stream failures
///
/// The gateway streams what the chain yields, so the chain's ``MidStreamPolicy`` applies to both surfaces.
/// `continue` (what `llm-fallback serve` configures unless `mid_stream` says otherwise) has the next provider that
/// takes an assistant prefill go on from exactly the delivered text: the client sees one answer, the seam cut of any
/// repeated overlap, and the chunk (OpenAI) or `message_delta` (Anthropic) that ends it names the providers that
/// produced it in an `llm_fallback.providers` member the official SDKs tolerate, since the head's
/// `x-llm-fallback-*` headers went out before the break. A relayed Anthropic stream is taken over where its
/// events stopped (same message, same text block). A tool call or JSON output is never continued; without a
/// provider that can continue, the stream ends with an error event (code `stream_interrupted`) that names the
/// break. `fail` (the library's default) always ends with that error event. `restart` would make the chain send
/// the answer again from the start, which neither format can express (a client cannot be told to discard text):
/// the gateway ends such a stream with an error event (code `stream_restarted`) instead.
///
/// ### Security
///
/// With ``GatewayConfiguration/apiKeys`` set, every route but `/health` needs `Authorization: Bearer <key>`,
/// compared in constant time. The gateway fails closed: an empty key is a configuration error, never "no key", and
/// a non-loopback address without keys needs ``GatewayConfiguration/allowUnauthenticated``; the start-up log says
/// when authentication is off. Provider keys never appear in responses, errors, logs, metrics or descriptions. A
/// client that disconnects cancels its chain request, and with it the upstream request, also while the upstream is
/// silent.
///
/// ### Limits
///
/// ``GatewayConfiguration/limits`` bounds the chat completions and streams handled at once (beyond them: an
/// immediate `503`, nothing queues) and the time a client may take to send its request's head and body, in total.
/// A body refused before it was read (`413`) is answered at once and then read and discarded for a short while
/// before the connection closes, so a client that sends everything before reading still gets the answer.
///
/// ### Shutdown
///
/// On SIGTERM or SIGINT the gateway stops accepting connections and lets in-flight requests and streams finish for
/// up to ``GatewayConfiguration/shutdownGracePeriod``; whatever still runs then is cancelled, upstream requests
/// included, and a stream cut that way ends without `data: [DONE]`.
public struct Gateway: Sendable {
    /// The chains served, by model name.
    public let chains: [String: FallbackChain]
    /// The configuration.
    public let configuration: GatewayConfiguration
    /// Where the gateway logs: the start-up line (info), failed requests (warning), refusals (debug).
    public let logger: Logger

    let core: GatewayCore

    /// Creates a gateway over already-built chains.
    ///
    /// - Parameters:
    ///   - chains: The chains, by the model name clients ask for.
    ///   - configuration: Address, keys, limits, metrics.
    ///   - logger: Where the gateway logs. Keys never appear.
    /// - Throws: ``GatewayConfigurationError`` when the configuration is unsafe or invalid (see
    ///   ``GatewayConfiguration/validate()``): an empty key, a non-loopback host without keys or
    ///   ``GatewayConfiguration/allowUnauthenticated``, a limit below 1.
    public init(chains: [String: FallbackChain], configuration: GatewayConfiguration, logger: Logger) throws(GatewayConfigurationError) {
        self.chains = chains
        self.configuration = configuration
        self.logger = logger
        self.core = try GatewayCore(chains: chains, configuration: configuration, logger: logger)
    }

    /// Runs the gateway until the task is cancelled or the process receives SIGTERM or SIGINT, then shuts down
    /// gracefully (see ``GatewayConfiguration/shutdownGracePeriod``).
    ///
    /// Bootstraps swift-metrics over the Prometheus registry first when ``GatewayConfiguration/bootstrapMetrics``
    /// says so, and logs one line naming the address and the chains once the server listens.
    ///
    /// - Throws: When the address cannot be bound, or the server fails.
    public func run() async throws {
        if configuration.bootstrapMetrics {
            GatewayMetrics.bootstrap(registry: core.registry)
        }
        var serviceConfiguration = ServiceGroupConfiguration(
            services: [buildApplication()],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        serviceConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGracePeriod
        try await ServiceGroup(configuration: serviceConfiguration).run()
    }

    /// Builds the Hummingbird application, for tests and for embedding the gateway in your own `ServiceGroup`.
    ///
    /// Running it does not bootstrap metrics and installs no signal handlers: that is ``run()``'s job.
    ///
    /// ```swift
    /// let app = gateway.buildApplication { port in print("listening on", port) }
    /// let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
    /// try await group.run()
    /// ```
    ///
    /// - Parameter onServerRunning: Called with the bound port once the server listens (after the start-up log
    ///   line); useful with port `0`.
    /// - Returns: The application, a `Service`.
    public func buildApplication(
        onServerRunning: (@Sendable (_ port: Int) async -> Void)? = nil
    ) -> some ApplicationProtocol {
        let registry = core.connections
        let limits = configuration.limits
        let timeouts = ConnectionGuardState.Timeouts(
            header: Self.timeAmount(limits.requestHeaderTimeout),
            body: Self.timeAmount(limits.requestBodyTimeout),
            linger: Self.timeAmount(limits.lingeringCloseTimeout)
        )
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionGuardHandler(registry: registry, timeouts: timeouts)],
            idleTimeout: configuration.idleTimeout.map(Self.timeAmount)
        )
        let logger = self.logger
        let announcement = startupDescription()
        let authentication = authenticationDescription()
        return Application(
            responder: GatewayResponder(core: core),
            server: .http1(configuration: http1),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: configuration.serverName
            ),
            onServerRunning: { channel in
                let address = channel.localAddress
                let port = address?.port ?? 0
                let host = address?.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? "?"
                logger.info("llm-fallback gateway listening on http://\(host):\(port) serving \(announcement)")
                logger.log(level: authentication.level, "\(authentication.message)")
                await onServerRunning?(port)
            },
            logger: logger
        )
    }

    /// What the start-up log says about authentication: off is a warning (an error-level line when the address
    /// is not loopback, which ``GatewayConfiguration/allowUnauthenticated`` allowed).
    func authenticationDescription() -> (level: Logger.Level, message: String) {
        let keys = configuration.apiKeys.count
        if keys > 0 {
            return (.info, "authentication: on, \(keys) API key\(keys == 1 ? "" : "s") (Authorization: Bearer)")
        }
        if configuration.isLoopback {
            return (
                .warning,
                "authentication is OFF: no API keys are configured, so any local process may use this gateway "
                    + "(it listens on a loopback address only)"
            )
        }
        return (
            .error,
            "authentication is OFF on \(configuration.host): anyone who can reach this address may use the gateway "
                + "and spend the providers' credits (allowed by allow_unauthenticated; set API keys to turn it on)"
        )
    }

    /// A duration as NIO's `TimeAmount`, clamped to what it can hold (never trapping on a huge one).
    static func timeAmount(_ duration: Duration) -> TimeAmount {
        if duration <= .zero { return .zero }
        if duration >= .seconds(Int64.max / 1_000_000_000) { return .nanoseconds(Int64.max) }
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// `2 chains: default (openai/gpt-4o, anthropic/claude...), fast (groq/llama3)`.
    func startupDescription() -> String {
        let names = chains.keys.sorted()
        let described = names.map { name in
            "\(name) (\(chains[name]!.providers.map(\.name).joined(separator: ", ")))"
        }
        return "\(names.count) chain\(names.count == 1 ? "" : "s"): " + described.joined(separator: ", ")
    }
}

extension Gateway: CustomStringConvertible, CustomReflectable {
    /// The chains' names and the configuration; never a key.
    public var description: String { "Gateway(chains: \(chains.keys.sorted()), \(configuration))" }

    /// The chains' names and the configuration (whose mirror shows no key); the chains themselves, whose
    /// providers hold keys, are not reflected.
    public var customMirror: Mirror {
        Mirror(self, children: ["chains": chains.keys.sorted(), "configuration": configuration], displayStyle: .struct)
    }
}
