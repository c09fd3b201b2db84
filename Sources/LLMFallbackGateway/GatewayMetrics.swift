import LLMFallback
import CoreMetrics
import Prometheus
import Synchronization

/// The gateway's Prometheus wiring: the process-wide registry `GET /metrics` serves by default, and the one-time
/// swift-metrics bootstrap that routes the library's figures (`llm_fallback_*`) into it.
///
/// ```swift
/// GatewayMetrics.bootstrap()                      // first, so the chains' counters land in Prometheus
/// let chains = try loadChains()                   // then build the chains
/// try await Gateway(chains: chains, configuration: .init(), logger: logger).run()
/// ```
public enum GatewayMetrics {
    /// The registry `GET /metrics` serves unless ``GatewayConfiguration/metricsRegistry`` names another.
    public static let registry = PrometheusCollectorRegistry()

    private static let bootstrapped = Mutex(false)

    /// Bootstraps swift-metrics with a `PrometheusMetricsFactory` over `registry`, once per process.
    ///
    /// Safe to call more than once and from several gateways: only the first call bootstraps. Nothing happens
    /// when another metrics backend was bootstrapped before (swift-metrics allows one per process).
    ///
    /// - Parameter registry: The registry to collect into (``registry`` by default).
    /// - Returns: Whether swift-metrics now reports into a Prometheus registry set up by this call or an earlier one.
    @discardableResult
    public static func bootstrap(registry: PrometheusCollectorRegistry = GatewayMetrics.registry) -> Bool {
        bootstrapped.locked { done in
            if done { return true }
            guard MetricsSystem.factory is NOOPMetricsHandler else { return false }
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            done = true
            return true
        }
    }
}

/// What the gateway measures about itself, registered directly on the Prometheus registry (no swift-metrics hop on
/// the request path).
final class GatewayInstruments: Sendable {
    /// The routes, as metric labels.
    enum Route: Int, CaseIterable, Sendable {
        case chatCompletions, messages, countTokens, models, health, healthProviders, metrics, other

        var label: String {
            switch self {
            case .chatCompletions: return "chat_completions"
            case .messages: return "messages"
            case .countTokens: return "count_tokens"
            case .models: return "models"
            case .health: return "health"
            case .healthProviders: return "health_providers"
            case .metrics: return "metrics"
            case .other: return "other"
            }
        }
    }

    static let requestsName = "llm_fallback_gateway_requests_total"
    static let inFlightName = "llm_fallback_gateway_requests_in_flight"
    static let streamsName = "llm_fallback_gateway_open_streams"
    static let durationName = "llm_fallback_gateway_request_duration_seconds"
    /// Statuses whose counters are created up front, so the request path only reads an immutable table.
    static let commonStatuses = [200, 400, 401, 403, 404, 405, 413, 429, 499, 500, 502, 503, 504, 529]

    let registry: PrometheusCollectorRegistry
    let inFlight: Prometheus.Gauge
    let openStreams: Prometheus.Gauge
    private let counters: [[Int: Prometheus.Counter]]
    private let durations: [DurationHistogram]

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        let requests = MetricNameDescriptor(
            metricName: "llm_fallback_gateway_requests",
            unitName: "total",
            helpText: "Requests answered by the gateway, by route and HTTP status."
        )
        counters = Route.allCases.map { route in
            var byStatus: [Int: Prometheus.Counter] = [:]
            for status in Self.commonStatuses {
                byStatus[status] = registry.makeCounter(
                    descriptor: requests,
                    labels: [("route", route.label), ("status", String(status))]
                )
            }
            return byStatus
        }
        let duration = MetricNameDescriptor(
            metricName: "llm_fallback_gateway_request_duration",
            unitName: "seconds",
            helpText: "Time from a request's arrival to its response head (streams: to the first chunk)."
        )
        let buckets: [Duration] = [
            .microseconds(250), .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
            .milliseconds(250), .seconds(1), .milliseconds(2500), .seconds(10), .seconds(30),
        ]
        durations = Route.allCases.map { route in
            registry.makeDurationHistogram(descriptor: duration, labels: [("route", route.label)], buckets: buckets)
        }
        inFlight = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "llm_fallback_gateway_requests_in_flight",
                unitName: "",
                helpText: "Requests being handled right now (streams until their last chunk)."
            )
        )
        openStreams = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "llm_fallback_gateway_open_streams",
                unitName: "",
                helpText: "Streaming responses open right now."
            )
        )
    }

    /// Counts one answered request.
    func record(route: Route, status: Int, duration: Duration) {
        if let counter = counters[route.rawValue][status] {
            counter.increment()
        } else {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    metricName: "llm_fallback_gateway_requests",
                    unitName: "total",
                    helpText: "Requests answered by the gateway, by route and HTTP status."
                ),
                labels: [("route", route.label), ("status", String(status))]
            ).increment()
        }
        durations[route.rawValue].record(duration)
    }
}

/// Holds one in-flight request (and, for a stream, one open stream) until it is released: the gauges go down
/// when the last reference goes, whichever way the response ends, even if its body is never written.
///
/// With a limiter, it also holds the request's place and (for a stream) the stream's place under the gateway's
/// limits, taken before it was made, and gives them back with the gauges.
final class InFlightLease: Sendable {
    private let instruments: GatewayInstruments
    private let isStream: Bool
    private let limiter: GatewayLimiter?
    private let released = Atomic(false)

    init(_ instruments: GatewayInstruments, isStream: Bool, limiter: GatewayLimiter? = nil) {
        self.instruments = instruments
        self.isStream = isStream
        self.limiter = limiter
        instruments.inFlight.increment()
        if isStream { instruments.openStreams.increment() }
    }

    /// Ends the lease now (once; later calls and the deinit do nothing more).
    func release() {
        guard !released.exchange(true, ordering: .relaxed) else { return }
        instruments.inFlight.decrement()
        if isStream { instruments.openStreams.decrement() }
        if let limiter {
            limiter.requests.release()
            if isStream { limiter.streams.release() }
        }
    }

    deinit {
        release()
    }
}
