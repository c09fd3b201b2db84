import Foundation

/// One entry of a chain: a provider kind, the model to ask, its key and its limits.
///
/// A value: cheap to copy, safe to share. Its ``description`` never shows the key.
///
/// ```swift
/// let primary = Provider("openai", model: "gpt-4o")                       // key from OPENAI_API_KEY
/// let local = Provider("ollama", model: "llama3")                         // no key needed
/// let custom = Provider("my-vllm", model: "qwen", baseURL: "http://gpu:8000/v1")
/// ```
public struct Provider: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The kind name: `openai`, `anthropic`, `google` (or `gemini`), `azure`, a known OpenAI-compatible vendor
    /// (`groq`, `together`, `mistral`, `deepseek`, `openrouter`, `fireworks`, `xai`, `ollama`, `vllm`,
    /// `lmstudio`, ...), or any other name together with a ``baseURL``.
    public var kind: String
    /// The model to ask (for Azure, the deployment name).
    public var model: String
    /// The key; `nil` reads the kind's environment variable when the request is made.
    public var apiKey: String?
    /// The API's base URL as the official SDKs take it: OpenAI's includes `/v1`; Anthropic's and Gemini's are the
    /// host root; Azure's is `https://RESOURCE.openai.azure.com`.
    public var baseURL: String?
    /// The time allowed for one attempt: connecting plus the whole response.
    public var timeout: Duration
    /// The share of traffic under the weighted strategy.
    public var weight: Double
    /// How many times a transient failure is retried on this provider before failing over.
    public var maxRetries: Int
    /// The label of this entry in logs, metrics, traces and health reports; `kind/model` unless set.
    public var name: String
    /// Extra headers sent with every request (for gateways such as OpenRouter's `HTTP-Referer`).
    public var headers: [String: String]
    /// The API version: Azure's `api-version` query item, Anthropic's `anthropic-version` header.
    public var apiVersion: String?
    /// Stream time limits for this provider; `nil` uses the chain's.
    public var streamTimeouts: StreamTimeouts?
    /// Top-level request members never sent to this provider, by their name in its wire format (a vendor that
    /// rejects `service_tier` or `store`); each one a request carried is reported as dropped.
    public var dropParameters: [String] = []
    /// Whether a stream that broke mid-answer may be continued on this provider by sending it the delivered text
    /// to go on from (``AssistantPrefill``): `nil` (the default) follows the kind and model
    /// (``ProviderKind/prefillsByDefault(model:)``), `true` and `false` say so.
    public var prefill: Bool?

    /// Creates a provider entry.
    ///
    /// - Parameters:
    ///   - kind: The kind name, such as `"openai"`; unknown kinds with a `baseURL` are OpenAI-compatible.
    ///   - model: The model to ask.
    ///   - apiKey: The key, or `nil` to read the kind's variable (`OPENAI_API_KEY`, ...).
    ///   - baseURL: The API's base URL, or `nil` for the kind's default.
    ///   - timeout: The time allowed for one attempt.
    ///   - weight: The share of traffic under ``RoutingStrategy/weighted``.
    ///   - maxRetries: Retries of a transient failure before failing over.
    public init(
        _ kind: String,
        model: String,
        apiKey: String? = nil,
        baseURL: String? = nil,
        timeout: Duration = .seconds(30),
        weight: Double = 1.0,
        maxRetries: Int = 2
    ) {
        self.kind = kind
        self.model = model
        self.apiKey = apiKey
        self.baseURL = baseURL
        self.timeout = timeout
        self.weight = weight
        self.maxRetries = maxRetries
        self.name = "\(kind)/\(model)"
        self.headers = [:]
        self.apiVersion = nil
        self.streamTimeouts = nil
    }

    /// `kind/model`, or the entry's ``name``. Never the key.
    public var description: String { name }

    public var debugDescription: String {
        var parts = ["kind: \(kind)", "model: \(model)"]
        parts.append("apiKey: \(apiKey == nil ? "from environment" : "<redacted>")")
        if let baseURL { parts.append("baseURL: \(redactingCredentials(baseURL))") }
        parts.append("timeout: \(formatDuration(timeout))")
        parts.append("maxRetries: \(maxRetries)")
        return "Provider(\(name); \(parts.joined(separator: ", ")))"
    }

    /// A mirror without the key, so `dump(provider)` and debuggers never show it.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "name": name, "kind": kind, "model": model, "apiKey": apiKey == nil ? "from environment" : "<redacted>",
                "baseURL": baseURL.map(redactingCredentials) as Any, "timeout": timeout, "weight": weight, "maxRetries": maxRetries,
            ],
            displayStyle: .struct
        )
    }

    /// Resolves the kind, base URL and key.
    ///
    /// - Parameter environment: Where keys are read from when ``apiKey`` is `nil`.
    /// - Throws: A ``ProviderError`` of kind ``ProviderError/Kind/misconfigured`` for an unknown kind without a
    ///   base URL, or a kind that needs a key when none is set.
    public func resolved(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ProviderError) -> ResolvedProvider {
        let kindInfo: ProviderKind
        if let known = ProviderKind.named(kind) {
            kindInfo = known
        } else if baseURL != nil {
            kindInfo = .openAICompatible(named: kind)
        } else {
            throw ProviderError(
                .misconfigured,
                message: "unknown provider kind '\(kind)'; give a baseURL to use it as OpenAI-compatible, or one of: "
                    + ProviderKind.known.keys.sorted().joined(separator: ", "),
                provider: name
            )
        }
        guard var base = baseURL ?? kindInfo.defaultBaseURL else {
            let hint = kindInfo.wireFormat == .azureOpenAI ? " (https://RESOURCE.openai.azure.com)" : ""
            throw ProviderError(.misconfigured, message: "provider kind '\(kind)' needs a baseURL\(hint)", provider: name)
        }
        while base.hasSuffix("/") { base.removeLast() }
        var key = apiKey
        if key == nil {
            for variable in kindInfo.apiKeyVariables {
                if let value = environment[variable], !value.isEmpty {
                    key = value
                    break
                }
            }
        }
        if key == nil && kindInfo.requiresAPIKey && baseURL == nil {
            let variables = kindInfo.apiKeyVariables.joined(separator: " or ")
            throw ProviderError(.misconfigured, message: "no API key for '\(kind)': pass apiKey or set \(variables)", provider: name)
        }
        return ResolvedProvider(provider: self, kind: kindInfo, baseURL: base, apiKey: key)
    }
}

/// A provider whose kind, base URL and key are known: what an adapter needs to build a request.
///
/// Its description, debug description and mirror (`dump`, debuggers, `String(reflecting:)`) never show the key.
public struct ResolvedProvider: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The entry as the user wrote it.
    public var provider: Provider
    /// What its kind name means.
    public var kind: ProviderKind
    /// The base URL without a trailing slash.
    public var baseURL: String
    /// The key, when there is one.
    public var apiKey: String?

    /// Creates a resolved provider.
    public init(provider: Provider, kind: ProviderKind, baseURL: String, apiKey: String?) {
        self.provider = provider
        self.kind = kind
        self.baseURL = baseURL
        self.apiKey = apiKey
    }

    public var description: String { provider.name }

    public var debugDescription: String {
        "ResolvedProvider(\(provider.name); kind: \(kind.name), baseURL: \(redactingCredentials(baseURL)), "
            + "apiKey: \(apiKey == nil ? "none" : "<redacted>"))"
    }

    /// A mirror without the key, so `dump(resolved)` and debuggers never show it.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "provider": provider, "kind": kind.name, "baseURL": redactingCredentials(baseURL),
                "apiKey": apiKey == nil ? "none" : "<redacted>",
            ],
            displayStyle: .struct
        )
    }
}

/// `url` without the credentials in its authority (`https://user:secret@host` -> `https://<redacted>@host`) or
/// the value of a query item that looks like a key (`?key=...`).
func redactingCredentials(_ url: String) -> String {
    var text = url
    if let scheme = text.range(of: "://") {
        let authorityEnd = text[scheme.upperBound...].firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? text.endIndex
        let authority = text[scheme.upperBound..<authorityEnd]
        if let at = authority.lastIndex(of: "@") {
            text.replaceSubrange(scheme.upperBound..<at, with: "<redacted>")
        }
    }
    if let query = text.firstIndex(of: "?") {
        let items = text[text.index(after: query)...].split(separator: "&", omittingEmptySubsequences: false).map { item -> String in
            guard let equals = item.firstIndex(of: "=") else { return String(item) }
            let name = item[..<equals].lowercased()
            let secret = name.contains("key") || name.contains("token") || name.contains("secret") || name == "sig"
            return secret ? item[..<equals] + "=<redacted>" : String(item)
        }
        text = String(text[...query]) + items.joined(separator: "&")
    }
    return text
}
