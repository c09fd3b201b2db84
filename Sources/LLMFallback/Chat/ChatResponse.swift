import Foundation

/// A provider-neutral answer.
public struct ChatResponse: Sendable {
    /// The text of the answer (empty when the model only called tools).
    public var content: String
    /// The tools the model called.
    public var toolCalls: [ToolCall]
    /// Why the model stopped.
    public var finishReason: FinishReason?
    /// Token counts, when the provider reported them.
    public var usage: Usage?
    /// The provider's id for this response.
    public var id: String?
    /// The kind of provider that answered, such as `"openai"`.
    public var provider: String
    /// The label of the chain entry that answered (``Provider/name``), unique within a chain.
    public var providerName: String
    /// The model that answered, as the provider reported it.
    public var model: String
    /// Time from sending the answering attempt to its full response.
    public var latency: Duration
    /// How many attempts the chain made, this one included.
    public var attempts: Int
    /// Every attempt the chain made for this request, in order.
    public var trace: [AttemptRecord]
    /// The provider's raw response body, for fields this model does not map.
    public var rawBody: Data?
    /// The order in which the chain's routing strategy ranked the providers for this request (entry labels).
    public var route: [String] = []
    /// The wire format of the provider that answered, which ``rawBody`` is written in.
    public var wireFormat: WireFormat?
    /// The request's parameters that the answering provider could not be sent (its API has no counterpart, or
    /// its configuration drops them), by their OpenAI names: `["logit_bias", "frequency_penalty"]`.
    public var droppedParameters: [String] = []

    /// ``latency`` in milliseconds.
    public var latencyMs: Double { latency.milliseconds }

    /// Creates a response.
    public init(
        content: String,
        toolCalls: [ToolCall] = [],
        finishReason: FinishReason? = nil,
        usage: Usage? = nil,
        id: String? = nil,
        provider: String,
        providerName: String? = nil,
        model: String,
        latency: Duration = .zero,
        attempts: Int = 1,
        trace: [AttemptRecord] = [],
        rawBody: Data? = nil
    ) {
        self.content = content
        self.toolCalls = toolCalls
        self.finishReason = finishReason
        self.usage = usage
        self.id = id
        self.provider = provider
        self.providerName = providerName ?? provider
        self.model = model
        self.latency = latency
        self.attempts = attempts
        self.trace = trace
        self.rawBody = rawBody
    }

    /// The body parsed as JSON, when it is JSON.
    public var rawJSON: JSONValue? {
        rawBody.flatMap { try? JSONValue(parsing: $0) }
    }
}

/// One piece of a streamed answer.
public struct ChatChunk: Sendable, Hashable {
    /// What this chunk is.
    public enum Kind: Hashable, Sendable {
        /// A piece of the answer.
        case delta
        /// The answer restarts from the beginning on another provider: discard what was shown
        /// (sent only under the `restart` mid-stream policy).
        case restart
    }

    /// What this chunk is.
    public var kind: Kind
    /// The text delta of this chunk (empty when the chunk carries none).
    public var content: String
    /// Fragments of tool calls, by index.
    public var toolCallDeltas: [ToolCallDelta]
    /// Set on the chunk that ends the answer.
    public var finishReason: FinishReason?
    /// Set once, near the end, when the provider reports usage.
    public var usage: Usage?
    /// The provider's response id.
    public var id: String?
    /// The kind of provider streaming this chunk.
    public var provider: String
    /// The model streaming this chunk.
    public var model: String
    /// The label of the chain entry streaming this chunk (``Provider/name``); empty outside a chain.
    public var providerName: String = ""
    /// How many attempts the chain had made when this chunk's attempt started (1 when the first try streams).
    public var attempts: Int = 0
    /// The provider's own event data for this chunk (an OpenAI chunk's JSON), for fields this model does not
    /// map; `nil` when the chunk was made by the chain.
    public var rawData: String?
    /// The wire format ``rawData`` is written in.
    public var wireFormat: WireFormat?
    /// The request's parameters that this chunk's provider could not be sent (see
    /// ``ChatResponse/droppedParameters``).
    public var droppedParameters: [String] = []
    /// Whether the chunk is only a keep-alive: one the chain yields every
    /// ``FallbackChain/RequestOptions/keepAliveInterval`` (no content, no provider), or a provider's own relayed
    /// with its ``rawData`` (an Anthropic `ping`). It shows the connection lives, not that the answer progresses:
    /// it resets no stall timer.
    public var isKeepAlive = false
    /// On the chunk that ends an answer another provider finished after a break (``MidStreamPolicy/continue``):
    /// the entries that produced it, in order (``Provider/name``s). Empty for an answer one provider gave.
    public var producedBy: [String] = []

    /// Creates a chunk.
    public init(
        kind: Kind = .delta,
        content: String = "",
        toolCallDeltas: [ToolCallDelta] = [],
        finishReason: FinishReason? = nil,
        usage: Usage? = nil,
        id: String? = nil,
        provider: String = "",
        model: String = ""
    ) {
        self.kind = kind
        self.content = content
        self.toolCallDeltas = toolCallDeltas
        self.finishReason = finishReason
        self.usage = usage
        self.id = id
        self.provider = provider
        self.model = model
    }

    /// Whether the chunk carries content the caller would see (text or tool call fragments).
    public var hasContent: Bool { !content.isEmpty || !toolCallDeltas.isEmpty }
}

/// One attempt the chain made: which provider, how it ended and how long it took.
public struct AttemptRecord: Sendable, Hashable, CustomStringConvertible {
    /// How an attempt ended.
    public enum Outcome: Hashable, Sendable {
        /// The provider answered.
        case success
        /// The provider failed with this error class.
        case failure(ProviderError.Kind)
        /// The caller cancelled.
        case cancelled
    }

    /// The chain entry's label (``Provider/name``).
    public var provider: String
    /// The model asked.
    public var model: String
    /// 1 for the first try of this provider, 2 for its first retry, and so on.
    public var number: Int
    /// How it ended.
    public var outcome: Outcome
    /// The HTTP status, when one arrived.
    public var status: Int?
    /// How long it took.
    public var duration: Duration
    /// The error's summary, for failures.
    public var message: String?

    /// Creates a record.
    public init(provider: String, model: String, number: Int, outcome: Outcome, status: Int? = nil, duration: Duration, message: String? = nil) {
        self.provider = provider
        self.model = model
        self.number = number
        self.outcome = outcome
        self.status = status
        self.duration = duration
        self.message = message
    }

    public var description: String {
        let ms = String(format: "%.1fms", duration.milliseconds)
        switch outcome {
        case .success: return "\(provider) #\(number): ok (\(ms))"
        case .cancelled: return "\(provider) #\(number): cancelled (\(ms))"
        case .failure(let kind):
            let status = status.map { " (\($0))" } ?? ""
            return "\(provider) #\(number): \(kind)\(status) (\(ms))"
        }
    }
}

extension Duration {
    /// The duration in (fractional) milliseconds. Total: unlike `components`, it never traps, whatever the
    /// duration (a sum of two huge durations goes past `Int64.max` seconds).
    public var milliseconds: Double {
        attoseconds.approximateDouble / 1e15
    }

    /// The duration in (fractional) seconds.
    var seconds: Double {
        attoseconds.approximateDouble / 1e18
    }
}

extension Int128 {
    /// The nearest `Double`, exact below 2^53 in magnitude and otherwise within a unit in the last place.
    ///
    /// `Double(_:)` from an `Int128` goes through the standard library's generic `BinaryInteger` conversion, one
    /// protocol witness at a time: 2.8 µs a call measured on this machine (release build), paid on every attempt's
    /// latency and every transport timeout. Split into two 64-bit halves, as here: 18 ns.
    var approximateDouble: Double {
        let high = Int64(truncatingIfNeeded: self >> 64)
        let low = UInt64(truncatingIfNeeded: self)
        // Values that fit in an Int64 (every real duration) convert directly, so that small negative values do not
        // lose their digits in the sum below.
        if high == 0, low <= UInt64(Int64.max) { return Double(Int64(low)) }
        if high == -1, low > UInt64(Int64.max) { return Double(Int64(bitPattern: low)) }
        return Double(high) * 18_446_744_073_709_551_616.0 + Double(low)
    }
}
