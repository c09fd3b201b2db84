import Foundation
import LLMFallback
import LLMFallbackPostgres
import LLMFallbackGateway
import Yams

/// An `llm-fallback.yaml` file, read and checked: named chains, each a ``FallbackChain/Configuration`` and its
/// providers, and the gateway's ``ServerSettings``.
///
/// ```yaml
/// chains:
///   default:
///     strategy: ordered
///     timeout: 30s
///     circuit_breaker: { failure_threshold: 3, recovery_timeout: 60s }
///     providers:
///       - { name: openai, model: gpt-4o, api_key: "${OPENAI_API_KEY}" }
///       - { name: anthropic, model: claude-3-5-sonnet-20241022 }
/// server: { host: 127.0.0.1, port: 8080, api_keys: ["${LLM_FALLBACK_GATEWAY_KEY}"] }
/// ```
///
/// ```swift
/// let file = try ConfigFile.load(path: "llm-fallback.yaml")
/// let settings = file.chain(named: "default")!
/// let chain = FallbackChain(settings.providers, configuration: settings.configuration)
/// ```
///
/// Loading reports every problem at once (``ConfigErrors``), each with its file, line and key path: a missing
/// `${VARIABLE}`, an unknown provider kind, a bad duration, a wrong type, an unknown or missing key.
struct ConfigFile: Sendable {
    /// The file name looked for in the current directory.
    static let defaultFileName = "llm-fallback.yaml"
    /// The environment variable naming the file.
    static let environmentVariable = "LLM_FALLBACK_CONFIG"

    /// The file it was read from, as the user named it.
    var path: String
    /// The chains, in file order.
    var chains: [ChainSettings]
    /// The gateway's settings, when the file has a `server` section.
    var server: ServerSettings?
    /// Where provider health is shared, when the file has a `health` section.
    var health: HealthSettings?
    /// Problems that do not stop the file from loading, such as a provider whose key variable is not set.
    var warnings: [ConfigError]

    /// The chain called `name`.
    func chain(named name: String) -> ChainSettings? {
        chains.first { $0.name == name }
    }

    // MARK: Finding and loading

    /// Where the configuration file is: `explicit` (from `--config`), else the file named by
    /// `LLM_FALLBACK_CONFIG`, else `./llm-fallback.yaml` when it exists, else `nil`.
    ///
    /// An explicit or environment path is returned even when it does not exist, so that loading reports it.
    static func locate(
        explicit: String?,
        environment: [String: String],
        currentDirectory: String = FileManager.default.currentDirectoryPath
    ) -> String? {
        if let explicit, !explicit.isEmpty { return explicit }
        if let named = environment[environmentVariable], !named.isEmpty { return named }
        let local = (currentDirectory as NSString).appendingPathComponent(defaultFileName)
        return FileManager.default.fileExists(atPath: local) ? defaultFileName : nil
    }

    /// Reads and checks the file at `path`.
    ///
    /// - Parameters:
    ///   - path: The file.
    ///   - environment: Where `${VAR}` references are looked up.
    /// - Throws: ``ConfigErrors`` listing every problem, with line and key path.
    static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ConfigErrors) -> ConfigFile
    {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file"
            throw ConfigErrors([ConfigError(file: path, line: nil, keyPath: "", message: reason)])
        }
        return try parse(text, file: path, environment: environment)
    }

    /// Checks configuration text.
    ///
    /// - Parameters:
    ///   - text: The YAML text.
    ///   - file: The name used in messages.
    ///   - environment: Where `${VAR}` references are looked up.
    /// - Throws: ``ConfigErrors`` listing every problem, with line and key path.
    static func parse(_ text: String, file: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ConfigErrors) -> ConfigFile
    {
        let diagnostics = ConfigDiagnostics(file: file)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigErrors([syntaxError(error, file: file)])
        }
        guard let root else {
            throw ConfigErrors([
                ConfigError(
                    file: file,
                    line: nil,
                    keyPath: "",
                    message: "the file is empty (expected a 'chains' mapping)"
                )
            ])
        }
        let document = ConfigNode(node: root, path: .root, diagnostics: diagnostics, environment: environment)
        var chains: [ChainSettings] = []
        var server: ServerSettings?
        var health: HealthSettings?
        if let top = document.mapping(allowed: ["chains", "server", "health"]) {
            if let chainsNode = top.required("chains"), let mapping = chainsNode.mapping(allowed: nil) {
                if mapping.entries.isEmpty { chainsNode.error("no chains defined") }
                for entry in mapping.entries {
                    if let chain = ChainSettings.read(name: entry.key, from: entry.value) { chains.append(chain) }
                }
            }
            if let serverNode = top["server"] {
                server = ServerSettings.read(from: serverNode)
            }
            if let healthNode = top["health"] {
                health = HealthSettings.read(from: healthNode)
            }
            checkModelRouting(chains: chains, server: server, chainsNode: top["chains"], serverNode: top["server"])
        }
        guard diagnostics.errors.isEmpty else { throw ConfigErrors(diagnostics.errors) }
        return ConfigFile(
            path: file,
            chains: chains,
            server: server,
            health: health,
            warnings: diagnostics.warnings.sorted { ($0.line ?? 0) < ($1.line ?? 0) }
        )
    }

    /// Aliases claimed by two chains, aliases that are another chain's name, and a default chain that is no
    /// chain: errors at the line of the alias or key.
    private static func checkModelRouting(chains: [ChainSettings], server: ServerSettings?, chainsNode: ConfigNode?, serverNode: ConfigNode?) {
        let names = Set(chains.map(\.name))
        var claimed: [String: String] = [:]
        for chain in chains {
            let aliasNodes = chainsNode?.mapping(allowed: nil)?[chain.name]?.mapping(allowed: nil)?["aliases"]?.list() ?? []
            for (offset, alias) in chain.aliases.enumerated() {
                let node = offset < aliasNodes.count ? aliasNodes[offset] : chainsNode
                if let other = claimed[alias] {
                    node?.error("the alias '\(alias)' is claimed by two chains, '\(other)' and '\(chain.name)'")
                } else if names.contains(alias) && alias != chain.name {
                    node?.error("the alias '\(alias)' is the name of another chain")
                }
                claimed[alias] = claimed[alias] ?? chain.name
            }
        }
        if let server, let defaultChain = server.defaultChain, !names.contains(defaultChain) {
            let node = serverNode?.mapping(allowed: nil)?["default_chain"] ?? serverNode
            node?.error("the default chain '\(defaultChain)' is not a chain (chains: \(names.sorted().joined(separator: ", ")))")
        }
    }

    private static func syntaxError(_ error: any Error, file: String) -> ConfigError {
        guard let yaml = error as? YamlError else {
            return ConfigError(file: file, line: nil, keyPath: "", message: "invalid YAML: \(error)")
        }
        switch yaml {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { "\($0.text) (line \($0.mark.line)): " } ?? ""
            return ConfigError(file: file, line: mark.line, keyPath: "", message: "invalid YAML: \(detail)\(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
            return ConfigError(file: file, line: context.mark.line, keyPath: "", message: "duplicate key \(keys)")
        default:
            return ConfigError(file: file, line: nil, keyPath: "", message: "invalid YAML: \(yaml)")
        }
    }
}

/// One named chain of a configuration file: the chain's settings and its providers.
struct ChainSettings: Sendable {
    /// The chain's name (the key under `chains`); the gateway serves it as a model of that name.
    var name: String
    /// The line the chain starts on.
    var line: Int?
    /// Routing, breaker, deadline and stream settings.
    var configuration: FallbackChain.Configuration
    /// The providers, in order of preference.
    var providers: [Provider]
    /// Other model names the gateway serves with this chain: exact names, and patterns with `*`.
    var aliases: [String] = []

    /// The keys a chain may have.
    static let keys = [
        "strategy", "timeout", "request_timeout", "max_retries", "circuit_breaker", "retry", "mid_stream", "stream",
        "strict_params", "aliases", "providers",
    ]
    /// The keys of `circuit_breaker`.
    static let breakerKeys = [
        "enabled", "failure_threshold", "recovery_timeout", "max_recovery_timeout", "half_open_max_probes",
        "count_rate_limits_with_retry_after",
    ]
    /// The keys of `retry`.
    static let retryKeys = ["max_retry_after_wait", "max_retry_after_skip", "budget"]
    /// The keys of `retry.budget`.
    static let budgetKeys = ["ratio", "minimum", "window"]
    /// The keys of `stream`.
    static let streamKeys = ["first_token", "idle", "total"]
    /// The strategy names, for messages.
    static let strategies = ["ordered", "latency", "weighted", "round_robin"]

    /// Reads a chain; problems go to the node's diagnostics.
    static func read(name: String, from node: ConfigNode) -> ChainSettings? {
        guard let mapping = node.mapping(allowed: keys) else { return nil }
        let before = node.diagnostics.errors.count
        var configuration = FallbackChain.Configuration()

        if let value = mapping["strategy"] {
            if let text = value.string() {
                if let strategy = RoutingStrategy(name: text) {
                    configuration.strategy = strategy
                } else {
                    value.error("unknown strategy '\(text)' (expected one of: \(strategies.joined(separator: ", ")))")
                }
            }
        }
        if let value = mapping["timeout"] {
            configuration.timeout = value.duration()
        }
        if let value = mapping["request_timeout"] {
            configuration.requestTimeout = value.duration()
        }
        var defaultRetries: Int?
        if let value = mapping["max_retries"] {
            defaultRetries = value.integer(in: 0...100)
        }
        if let value = mapping["circuit_breaker"] {
            configuration.circuitBreaker = readBreaker(value)
        }
        if let value = mapping["retry"] {
            readRetry(value, into: &configuration.retry)
        }
        // A configured chain continues a stream that broke mid-answer where the next provider can take a prefill
        // (the library's default is `fail`): one answer, seam invisible, against an error after half an answer.
        configuration.midStreamPolicy = .continue
        if let value = mapping["mid_stream"],
            let text = value.choice(["fail", "restart", "continue", "continue_with_instruction"])
        {
            switch text {
            case "restart": configuration.midStreamPolicy = .restart
            case "continue": configuration.midStreamPolicy = .continue
            case "continue_with_instruction": configuration.midStreamPolicy = .continueWithInstruction
            default: configuration.midStreamPolicy = .fail
            }
        }
        if let value = mapping["strict_params"], let strict = value.bool() {
            configuration.strictParameters = strict
        }
        var aliases: [String] = []
        if let value = mapping["aliases"], let items = value.list() {
            for item in items {
                guard let alias = item.nonEmptyString("an alias") else { continue }
                if alias.utf8.count > 512 {
                    item.error("the alias is longer than 512 bytes")
                } else if aliases.contains(alias) {
                    item.error("'\(alias)' is listed twice")
                } else {
                    aliases.append(alias)
                }
            }
        }
        if let value = mapping["stream"], let timeouts = readStreamTimeouts(value) {
            configuration.streamTimeouts = timeouts
        }

        var providers: [Provider] = []
        if let list = mapping.required("providers")?.list() {
            if list.isEmpty {
                mapping["providers"]?.error("a chain needs at least one provider")
            }
            var labels: [String: Int] = [:]
            for (index, element) in list.enumerated() {
                guard var provider = readProvider(element) else { continue }
                if let defaultRetries, !element.hasKey("max_retries") { provider.maxRetries = defaultRetries }
                if let first = labels[provider.name] {
                    element.error(
                        "duplicate provider '\(provider.name)' (also providers[\(first)]); give one a 'label'"
                    )
                }
                labels[provider.name] = labels[provider.name] ?? index
                providers.append(provider)
            }
        }
        if configuration.strategy == .weighted, !providers.isEmpty, providers.allSatisfy({ $0.weight == 0 }) {
            (mapping["strategy"] ?? node).error("every provider's weight is 0: the weighted strategy needs one above 0")
        }
        guard node.diagnostics.errors.count == before else { return nil }
        return ChainSettings(name: name, line: node.line, configuration: configuration, providers: providers, aliases: aliases)
    }

    private static func readBreaker(_ node: ConfigNode) -> CircuitBreaker.Configuration {
        var breaker = CircuitBreaker.Configuration()
        if case .scalar = node.node {
            // `circuit_breaker: false` turns it off; `true` keeps the defaults.
            if let enabled = node.bool() { breaker.isEnabled = enabled }
            return breaker
        }
        guard let mapping = node.mapping(allowed: breakerKeys) else { return breaker }
        if let enabled = mapping["enabled"]?.bool() { breaker.isEnabled = enabled }
        if let threshold = mapping["failure_threshold"]?.integer(in: 1...1000) { breaker.failureThreshold = threshold }
        if let timeout = mapping["recovery_timeout"]?.duration() { breaker.recoveryTimeout = timeout }
        if let probes = mapping["half_open_max_probes"]?.integer(in: 1...1000) { breaker.halfOpenMaxProbes = probes }
        if let ceiling = mapping["max_recovery_timeout"]?.duration() { breaker.maxRecoveryTimeout = ceiling }
        if let counts = mapping["count_rate_limits_with_retry_after"]?.bool() { breaker.countsRateLimitsWithRetryAfter = counts }
        return breaker
    }

    /// Reads `retry: { max_retry_after_wait, max_retry_after_skip, budget: { ratio, minimum, window } }`.
    private static func readRetry(_ node: ConfigNode, into retry: inout RetryPolicy) {
        guard let mapping = node.mapping(allowed: retryKeys) else { return }
        if let wait = mapping["max_retry_after_wait"]?.duration() { retry.maxRetryAfterWait = wait }
        if let skip = mapping["max_retry_after_skip"]?.duration() { retry.maxRetryAfterSkip = skip }
        if let budgetNode = mapping["budget"], let budget = budgetNode.mapping(allowed: budgetKeys) {
            retry.budget = RetryBudget(
                ratio: budget["ratio"]?.number(in: 0...1000) ?? retry.budget.ratio,
                minimumRetries: budget["minimum"]?.integer(in: 0...1_000_000) ?? retry.budget.minimumRetries,
                window: budget["window"]?.duration() ?? retry.budget.window
            )
        }
    }

    private static func readStreamTimeouts(_ node: ConfigNode) -> StreamTimeouts? {
        guard let mapping = node.mapping(allowed: streamKeys) else { return nil }
        return StreamTimeouts(
            firstToken: mapping["first_token"]?.duration(),
            idle: mapping["idle"]?.duration(),
            total: mapping["total"]?.duration()
        )
    }

    /// The keys a provider entry may have.
    static let providerKeys = [
        "name", "model", "api_key", "base_url", "timeout", "weight", "max_retries", "label", "api_version", "headers",
        "stream", "drop_params", "prefill",
    ]

    /// Reads one provider entry; `nil` when it has an error (reported).
    private static func readProvider(_ node: ConfigNode) -> Provider? {
        let before = node.diagnostics.errors.count
        guard let mapping = node.mapping(allowed: providerKeys) else { return nil }
        let kindNode = mapping.required("name")
        let kind = kindNode?.string()?.trimmingCharacters(in: .whitespaces)
        let model = mapping.required("model")?.string()
        if kind?.isEmpty == true { kindNode?.error("the provider kind must not be empty") }
        if model?.isEmpty == true { mapping["model"]?.error("the model must not be empty") }

        var baseURL: String?
        if let value = mapping["base_url"], let text = value.nonEmptyString("the base URL") {
            if let url = URL(string: text), let scheme = url.scheme?.lowercased(),
                scheme == "http" || scheme == "https", url.host != nil
            {
                baseURL = text
            } else {
                value.error("invalid URL '\(text)' (expected http:// or https://)")
            }
        }
        var apiKey: String?
        if let value = mapping["api_key"], let text = value.nonEmptyString("the API key") {
            apiKey = text
        }
        let timeout = mapping["timeout"]?.duration()
        let weight = mapping["weight"]?.number(in: 0...1_000_000)
        let maxRetries = mapping["max_retries"]?.integer(in: 0...100)
        var label: String?
        if let value = mapping["label"], let text = value.string() {
            if text.isEmpty { value.error("the label must not be empty") } else { label = text }
        }
        let apiVersion = mapping["api_version"]?.string()
        var headers: [String: String] = [:]
        if let value = mapping["headers"], let headerMapping = value.mapping(allowed: nil) {
            for entry in headerMapping.entries {
                if let text = entry.value.string() { headers[entry.key] = text }
            }
        }
        let streamTimeouts = mapping["stream"].flatMap(readStreamTimeouts)
        let prefill = mapping["prefill"]?.bool()
        var dropParameters: [String] = []
        if let value = mapping["drop_params"], let items = value.list() {
            for item in items {
                guard let name = item.nonEmptyString("a dropped parameter's name") else { continue }
                if name == "model" || name == "messages" {
                    item.error("'\(name)' cannot be dropped: every request needs it")
                } else if dropParameters.contains(name) {
                    item.error("'\(name)' is listed twice")
                } else {
                    dropParameters.append(name)
                }
            }
        }

        guard let kind, let model, !kind.isEmpty, !model.isEmpty else { return nil }
        var provider = Provider(kind, model: model, apiKey: apiKey, baseURL: baseURL)
        if let timeout { provider.timeout = timeout }
        if let weight { provider.weight = weight }
        if let maxRetries { provider.maxRetries = maxRetries }
        if let label { provider.name = label }
        provider.apiVersion = apiVersion
        provider.headers = headers
        provider.streamTimeouts = streamTimeouts
        provider.dropParameters = dropParameters
        provider.prefill = prefill

        if ProviderKind.named(kind) == nil && baseURL == nil {
            let known = Set(ProviderKind.known.keys).sorted().joined(separator: ", ")
            kindNode?.error(
                "unknown provider kind '\(kind)' (known kinds: \(known); or give base_url to use any OpenAI-compatible server)"
            )
            return nil
        }
        // Resolve with a stand-in key, so only the kind and base URL are judged here: keys are read when used.
        var probe = provider
        if probe.apiKey == nil { probe.apiKey = "stand-in" }
        do {
            _ = try probe.resolved(environment: [:])
        } catch {
            node.error(error.message.replacingOccurrences(of: "baseURL", with: "base_url"))
            return nil
        }
        if apiKey == nil, baseURL == nil, let info = ProviderKind.named(kind), info.requiresAPIKey,
            !info.apiKeyVariables.contains(where: { !(node.environment[$0] ?? "").isEmpty })
        {
            node.warning("no API key: set \(info.apiKeyVariables.joined(separator: " or ")) or give api_key")
        }
        return node.diagnostics.errors.count == before ? provider : nil
    }
}

extension ConfigNode {
    /// Whether this mapping node has `key` (whatever its value).
    func hasKey(_ key: String) -> Bool {
        guard case .mapping(let mapping) = node else { return false }
        return mapping.keys.contains { $0.scalar?.string == key }
    }
}

/// Where provider health is shared between instances: the `health` section.
///
/// ```yaml
/// health:
///   store: postgres                 # or memory (the default: this instance only)
///   url: "${DATABASE_URL}"          # postgres://user:password@host:5432/database?sslmode=require
///   table: llm_fallback_health      # the default
///   channel: llm_fallback_health    # the default
///   instance: gateway-1             # this instance's name in the table; host-pid-random by default
/// ```
///
/// The URL's password never appears in messages, descriptions or logs.
struct HealthSettings: Sendable, CustomStringConvertible {
    /// The PostgreSQL store's configuration; `nil` for `store: memory`.
    var postgres: PostgresHealthStore.Configuration?

    static let keys = ["store", "url", "table", "channel", "instance"]

    static func read(from node: ConfigNode) -> HealthSettings? {
        guard let mapping = node.mapping(allowed: keys) else { return nil }
        let storeNode = mapping.required("store")
        guard let store = storeNode?.nonEmptyString("the health store") else { return nil }
        switch store {
        case "memory":
            for key in ["url", "table", "channel", "instance"] {
                mapping[key]?.error("'\(key)' is for store: postgres; store: memory keeps health in this instance")
            }
            return HealthSettings(postgres: nil)
        case "postgres", "postgresql":
            break
        default:
            storeNode?.error("unknown health store '\(store.prefix(60))' (expected postgres or memory)")
            return nil
        }
        let table = mapping["table"]?.nonEmptyString("the table") ?? PostgresHealthStore.Configuration.defaultTable
        let channel = mapping["channel"]?.nonEmptyString("the channel") ?? PostgresHealthStore.Configuration.defaultChannel
        var valid = true
        for (key, name) in [("table", table), ("channel", channel)] where !PostgresHealthStore.Configuration.isValidIdentifier(name) {
            mapping[key]?.error("the \(key) must be lowercase letters, digits and '_', starting with a letter or '_', at most 63 characters")
            valid = false
        }
        let instance = mapping["instance"]?.nonEmptyString("the instance name")
        guard let urlNode = mapping.required("url"), let url = urlNode.nonEmptyString("the database URL") else { return nil }
        do {
            let configuration = try PostgresHealthStore.Configuration(url: url, table: table, channel: channel, instanceName: instance)
            return valid ? HealthSettings(postgres: configuration) : nil
        } catch {
            // The store's messages never show the password.
            urlNode.error((error as? PostgresHealthStoreError)?.message ?? "the database URL is not a postgres:// URL")
            return nil
        }
    }

    var description: String { postgres.map { "\($0)" } ?? "memory" }
}

/// The gateway's settings: the `server` section.
///
/// ```yaml
/// server:
///   host: 0.0.0.0
///   port: 8080
///   api_keys: ["${LLM_FALLBACK_GATEWAY_KEY}"]
///   max_body_size: 4MB
///   limits: { max_concurrent_requests: 1024, max_open_streams: 1024, header_timeout: 10s, body_timeout: 60s }
/// ```
///
/// It fails closed: a key that is empty (a `${VAR}` set to the empty string) is an error, and so is a non-loopback
/// host without keys unless `allow_unauthenticated: true` says so.
struct ServerSettings: Sendable, Hashable, CustomStringConvertible, CustomReflectable {
    /// The address to listen on.
    var host: String = "127.0.0.1"
    /// The port to listen on.
    var port: Int = 8080
    /// The keys clients must send as `Authorization: Bearer <key>`; empty for none.
    var apiKeys: [String] = []
    /// Whether a non-loopback host may go without keys.
    var allowUnauthenticated = false
    /// The largest request body accepted, in bytes.
    var maxBodySize: Int = 4 << 20
    /// Whether error bodies carry what the upstreams said.
    var exposeUpstreamErrors = false
    /// Concurrency limits and client timeouts.
    var limits = GatewayConfiguration.Limits()
    /// The chain that serves models no chain name or alias matches.
    var defaultChain: String?
    /// The line of `default_chain`, for the error when it names no chain.
    var defaultChainLine: Int?
    /// `stream_keep_alive`: the Anthropic surface's keep-alive interval (see
    /// ``GatewayConfiguration/streamKeepAlive``); `0` turns it off.
    var streamKeepAlive: Duration? = GatewayConfiguration().streamKeepAlive

    /// The keys of `server`.
    static let keys = [
        "host", "port", "api_keys", "allow_unauthenticated", "max_body_size", "expose_upstream_errors", "limits",
        "default_chain", "stream_keep_alive",
    ]
    /// The keys of `server.limits`.
    static let limitKeys = [
        "max_concurrent_requests", "max_open_streams", "header_timeout", "body_timeout", "lingering_timeout",
    ]

    /// Reads the section; problems go to the node's diagnostics.
    static func read(from node: ConfigNode) -> ServerSettings? {
        guard let mapping = node.mapping(allowed: keys) else { return nil }
        let before = node.diagnostics.errors.count
        var settings = ServerSettings()
        if let host = mapping["host"]?.nonEmptyString("the host") { settings.host = host }
        if let port = mapping["port"]?.integer(in: 0...65535) { settings.port = port }
        if let list = mapping["api_keys"]?.list() {
            for element in list {
                guard let key = element.nonEmptyString("the API key") else { continue }
                if key.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) {
                    element.error("the API key contains spaces or control characters, which no client can send")
                    continue
                }
                settings.apiKeys.append(key)
            }
        }
        if let allow = mapping["allow_unauthenticated"]?.bool() { settings.allowUnauthenticated = allow }
        if let size = mapping["max_body_size"]?.byteSize() { settings.maxBodySize = size }
        if let expose = mapping["expose_upstream_errors"]?.bool() { settings.exposeUpstreamErrors = expose }
        if let value = mapping["default_chain"], let name = value.nonEmptyString("the default chain") {
            settings.defaultChain = name
            settings.defaultChainLine = value.line
        }
        if let value = mapping["stream_keep_alive"], let interval = value.duration(allowZero: true) {
            if interval == .zero {
                settings.streamKeepAlive = nil
            } else if interval < .milliseconds(100) {
                value.error("stream_keep_alive must be 0 (off) or at least 100ms: a shorter interval floods clients with pings")
            } else {
                settings.streamKeepAlive = interval
            }
        }
        if let limitsNode = mapping["limits"], let limits = limitsNode.mapping(allowed: limitKeys) {
            if let value = limits["max_concurrent_requests"]?.integer(in: 1...1_000_000) {
                settings.limits.maxConcurrentRequests = value
            }
            if let value = limits["max_open_streams"]?.integer(in: 1...1_000_000) {
                settings.limits.maxOpenStreams = value
            }
            if let value = limits["header_timeout"]?.duration() { settings.limits.requestHeaderTimeout = value }
            if let value = limits["body_timeout"]?.duration() { settings.limits.requestBodyTimeout = value }
            if let value = limits["lingering_timeout"]?.duration() { settings.limits.lingeringCloseTimeout = value }
        }
        let keysRead = node.diagnostics.errors.count == before
        if keysRead, settings.apiKeys.isEmpty, !settings.allowUnauthenticated, !settings.isLoopback {
            let where_ = mapping["host"] ?? node
            where_.error(
                "'\(settings.host)' is not a loopback address and no api_keys are set: anyone who can reach it could "
                    + "use the gateway; set api_keys, or allow_unauthenticated: true to serve without keys"
            )
        }
        return settings
    }

    /// Whether ``host`` is a loopback address.
    var isLoopback: Bool { GatewayConfiguration(host: host).isLoopback }

    /// The address, whether authentication is on, the limits; never the keys.
    var description: String {
        var text = "\(host):\(port), "
        if apiKeys.isEmpty {
            text += allowUnauthenticated || !isLoopback ? "authentication OFF (allowed)" : "authentication off (loopback)"
        } else {
            text += "\(apiKeys.count) API key\(apiKeys.count == 1 ? "" : "s")"
        }
        text += ", max body \(maxBodySize) bytes, at most \(limits.maxConcurrentRequests) requests and "
        text += "\(limits.maxOpenStreams) streams"
        if exposeUpstreamErrors { text += ", upstream errors exposed" }
        return text
    }

    /// Every field but the keys, which show as a count.
    var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "host": host, "port": port, "apiKeys": "<\(apiKeys.count) redacted>",
                "allowUnauthenticated": allowUnauthenticated, "maxBodySize": maxBodySize,
                "exposeUpstreamErrors": exposeUpstreamErrors, "limits": limits,
            ],
            displayStyle: .struct
        )
    }
}

extension ChainSettings: CustomReflectable {
    /// The chain's name, line and providers by name, kind and model: never a provider's key or headers.
    var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "name": name, "line": line as Any,
                "providers": providers.map { "\($0.name) [\($0.kind) \($0.model)]" },
            ],
            displayStyle: .struct
        )
    }
}

extension ConfigFile: CustomReflectable {
    /// The path, the chains and the server settings, through their own redacting mirrors.
    var customMirror: Mirror {
        Mirror(
            self,
            children: ["path": path, "chains": chains, "server": server as Any, "warnings": warnings],
            displayStyle: .struct
        )
    }
}
