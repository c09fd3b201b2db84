import Prometheus

/// Everything that tunes a ``Gateway``. Every field has a default; set only what you change.
///
/// ```swift
/// var configuration = GatewayConfiguration(host: "0.0.0.0", port: 8080)
/// configuration.apiKeys = [ProcessInfo.processInfo.environment["LLM_FALLBACK_GATEWAY_KEY"]!]
/// configuration.maxBodySize = 8 << 20
/// let gateway = Gateway(chains: ["default": chain], configuration: configuration, logger: logger)
/// try await gateway.run()
/// ```
public struct GatewayConfiguration: Sendable {
    /// The address to listen on (`127.0.0.1` by default: only this machine).
    public var host: String
    /// The TCP port to listen on; `0` picks a free one (logged at start-up and passed to `onServerRunning`).
    public var port: Int
    /// The keys clients must send as `Authorization: Bearer <key>`. Empty (the default) turns authentication off.
    ///
    /// When set, every route except `GET /health` requires one of them; keys are compared in constant time.
    public var apiKeys: [String]
    /// The largest request body accepted, in bytes (4 MiB by default); larger bodies are answered `413`.
    public var maxBodySize: Int
    /// How long in-flight requests and streams may run after SIGTERM or SIGINT before they are cancelled.
    public var shutdownGracePeriod: Duration
    /// How long an idle keep-alive connection stays open; `nil` keeps it until the client closes it.
    public var idleTimeout: Duration?
    /// The Prometheus registry `GET /metrics` serves; `nil` (the default) uses ``GatewayMetrics/registry``.
    ///
    /// The gateway registers its own metrics there directly. The library's swift-metrics figures appear there only
    /// when swift-metrics is bootstrapped with a `PrometheusMetricsFactory` over the same registry (see
    /// ``bootstrapMetrics``).
    public var metricsRegistry: PrometheusCollectorRegistry?
    /// Whether ``Gateway/run()`` bootstraps swift-metrics with a `PrometheusMetricsFactory` over the registry,
    /// once per process (`true` by default). Nothing is bootstrapped when another backend already was.
    ///
    /// swift-metrics handles are bound when they are created, so a chain built before the bootstrap reports its
    /// per-provider counters nowhere: call ``GatewayMetrics/bootstrap(registry:)`` before building the chains.
    public var bootstrapMetrics: Bool
    /// The `Server` response header's value, such as `llm-fallback`; `nil` (the default) sends no `Server` header.
    public var serverName: String?

    /// Creates a configuration.
    ///
    /// - Parameters:
    ///   - host: The address to listen on.
    ///   - port: The TCP port; `0` picks a free one.
    ///   - apiKeys: The keys clients must present; empty for none.
    ///   - maxBodySize: The largest request body accepted, in bytes.
    ///   - shutdownGracePeriod: How long in-flight work may finish after a shutdown signal.
    ///   - idleTimeout: How long an idle keep-alive connection stays open.
    ///   - metricsRegistry: The registry `/metrics` serves; `nil` for ``GatewayMetrics/registry``.
    ///   - bootstrapMetrics: Whether ``Gateway/run()`` bootstraps swift-metrics over the registry.
    ///   - serverName: The `Server` header's value, or `nil` for none.
    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        apiKeys: [String] = [],
        maxBodySize: Int = 4 << 20,
        shutdownGracePeriod: Duration = .seconds(30),
        idleTimeout: Duration? = .seconds(120),
        metricsRegistry: PrometheusCollectorRegistry? = nil,
        bootstrapMetrics: Bool = true,
        serverName: String? = nil
    ) {
        self.host = host
        self.port = port
        self.apiKeys = apiKeys
        self.maxBodySize = maxBodySize
        self.shutdownGracePeriod = shutdownGracePeriod
        self.idleTimeout = idleTimeout
        self.metricsRegistry = metricsRegistry
        self.bootstrapMetrics = bootstrapMetrics
        self.serverName = serverName
    }
}
