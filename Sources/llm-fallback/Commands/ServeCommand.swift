import ArgumentParser
import Foundation
import LLMFallback
import LLMFallbackPostgres
import LLMFallbackGateway
import Logging
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc

/// glibc's `mallopt(3)`, declared here: `<malloc.h>` is not part of Swift's Glibc module.
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// `llm-fallback serve`: the OpenAI-compatible failover gateway.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run an OpenAI-compatible gateway: every chain of the configuration file is served as a model.",
        discussion: """
            Point any OpenAI client at http://HOST:PORT/v1 and ask for a chain by name as the model. The gateway \
            fails over, keeps circuit breakers and routes as the chain says; the response's model is the model \
            that answered, and the x-llm-fallback-provider, -model and -attempts headers say who and how.

            Routes: POST /v1/chat/completions (streamed or not), GET /v1/models, GET /health (no key needed), \
            GET /health/providers, GET /metrics (Prometheus).

            Host, port, api_keys, max_body_size and limits come from the file's `server` section; the options \
            below override them. The gateway fails closed: an empty key (such as a ${VAR} set to nothing) is a \
            configuration error, and a non-loopback address without api_keys needs allow_unauthenticated: true. \
            The start-up log says when authentication is off. SIGTERM or SIGINT stops it gracefully: requests and \
            streams in flight may finish within --grace-period.

            Example:
              llm-fallback serve --config llm-fallback.yaml --port 8080
            """
    )

    @Option(help: "The address to listen on (default: the config's server.host, or 127.0.0.1).")
    var host: String?

    @Option(help: "The port to listen on; 0 picks a free one (default: the config's server.port, or 8080).")
    var port: Int?

    @Option(help: ArgumentHelp("How long in-flight requests may finish after SIGTERM, e.g. 30s.", valueName: "duration"))
    var gracePeriod: String = "30s"

    @Option(help: ArgumentHelp("The log level: trace, debug, info, notice, warning, error.", valueName: "level"))
    var logLevel: String = "info"

    @OptionGroup var configOptions: ConfigOptions

    func validate() throws {
        guard let grace = DurationText.parse(gracePeriod), grace >= .zero else {
            throw ValidationError("--grace-period: invalid duration '\(gracePeriod)' (expected e.g. 30s, 250ms)")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level: unknown level '\(logLevel)'")
        }
        if let port, !(0...65535).contains(port) {
            throw ValidationError("--port: \(port) is not a port")
        }
    }

    /// Makes glibc serve allocations of 128 KiB and more with their own mappings, returned to the system when
    /// freed. By default glibc raises that threshold after a large buffer is freed, so the next 4–32 MiB buffers
    /// (request bodies at the limit, an upstream's oversize answer) come from the heap, whose high-water mark stays
    /// resident: in the 10-minute chaos soak RSS then grew 42% in steps; with the threshold fixed it stayed flat
    /// (`scripts/soak.sh`, README). `MALLOC_MMAP_THRESHOLD_` in the environment, glibc's own setting, wins.
    static func returnLargeBuffersToTheSystem(environment: [String: String]) {
        #if canImport(Glibc)
        guard environment["MALLOC_MMAP_THRESHOLD_"] == nil else { return }
        // M_MMAP_THRESHOLD is -3 in <malloc.h>, which Swift's Glibc module does not export.
        _ = glibcMallopt(-3, 128 * 1024)
        #endif
    }

    func run() async throws {
        // Swift Concurrency already runs on NIO's event loops: installed by the synchronous entry point
        // (LLMFallbackMain), on the main thread, before this task started.
        let onEventLoops = LLMFallbackMain.concurrencyOnEventLoops.load(ordering: .relaxed)
        let environment = ProcessInfo.processInfo.environment
        Self.returnLargeBuffersToTheSystem(environment: environment)
        guard let file = try ChainSource.loadFile(configOptions, environment: environment, required: true) else {
            throw ExitCode(2)
        }
        guard !file.chains.isEmpty else {
            Console.errLine("error: \(file.path) defines no chains to serve")
            throw ExitCode(2)
        }
        var logger = Logger(label: "llm-fallback.gateway")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info

        // Metrics first, so the chains' counters land in the registry /metrics serves.
        GatewayMetrics.bootstrap()
        // One lean HTTP/1.1 client pool for every chain: upstream requests on the caller's event loop, head and
        // body in one write, responses handed over with one resumption.
        let transport = NIOHTTPClientTransport()
        // One shared health store for every chain, when the file has a health section with store: postgres.
        var healthStore: PostgresHealthStore?
        if let postgres = file.health?.postgres {
            var storeLogger = Logger(label: "llm-fallback.health-store")
            storeLogger.logLevel = logger.logLevel
            healthStore = try PostgresHealthStore(configuration: postgres, logger: storeLogger)
            logger.info("sharing provider health through \(postgres)")
        }
        var chains: [String: FallbackChain] = [:]
        for settings in file.chains {
            var chainConfiguration = settings.configuration
            chainConfiguration.healthStore = healthStore
            chains[settings.name] = FallbackChain(
                settings.providers,
                configuration: chainConfiguration,
                transport: transport,
                logger: logger
            )
        }
        let server = file.server ?? ServerSettings()
        var configuration = GatewayConfiguration(
            host: host ?? server.host,
            port: port ?? server.port,
            apiKeys: server.apiKeys,
            allowUnauthenticated: server.allowUnauthenticated,
            maxBodySize: server.maxBodySize,
            shutdownGracePeriod: DurationText.parse(gracePeriod) ?? .seconds(30),
            limits: server.limits,
            exposeUpstreamErrors: server.exposeUpstreamErrors
        )
        configuration.streamKeepAlive = server.streamKeepAlive
        configuration.modelRouting = ModelRouting(
            aliases: Dictionary(file.chains.filter { !$0.aliases.isEmpty }.map { ($0.name, $0.aliases) }, uniquingKeysWith: { $1 }),
            defaultChain: server.defaultChain
        )
        let gateway: Gateway
        do {
            gateway = try Gateway(chains: chains, configuration: configuration, logger: logger)
        } catch {
            // The file's own checks catch these for its values; what is left comes from an option (--host).
            var message = "error: \(error.message)"
            if error.code == .unauthenticatedPublicAddress, let host {
                message = "error: --host \(host): not a loopback address, and \(file.path) sets no server.api_keys "
                    + "(set them, or server.allow_unauthenticated: true to serve without keys)"
            }
            Console.errLine(message)
            throw ExitCode(2)
        }
        logger.debug("swift concurrency on NIO event loops: \(onEventLoops)")
        guard let healthStore else {
            try await gateway.run()
            return
        }
        // The store runs beside the gateway (never on a request's path) and stops when the gateway does.
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await healthStore.run() }
            try await gateway.run()
            group.cancelAll()
        }
    }
}
