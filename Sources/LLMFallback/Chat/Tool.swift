import Foundation

/// A function the model may call.
///
/// ```swift
/// let weather = Tool(
///     name: "get_weather",
///     description: "Current weather for a city",
///     parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]]
/// )
/// ```
public struct Tool: Hashable, Sendable {
    /// The function's name.
    public var name: String
    /// What the function does, for the model.
    public var description: String?
    /// The JSON Schema of the arguments object.
    public var parameters: JSONValue
    /// OpenAI's strict schema adherence flag.
    public var strict: Bool?

    /// Creates a tool definition.
    public init(name: String, description: String? = nil, parameters: JSONValue = ["type": "object", "properties": [:]], strict: Bool? = nil) {
        self.name = name
        self.description = description
        self.parameters = parameters
        self.strict = strict
    }
}

/// Whether and which tool the model must call.
public enum ToolChoice: Hashable, Sendable {
    /// The model decides.
    case auto
    /// The model must not call a tool.
    case none
    /// The model must call some tool.
    case required
    /// The model must call the named tool.
    case tool(String)
}

/// A call to a tool that the model made.
public struct ToolCall: Hashable, Sendable {
    /// The provider's id for the call; a ``Role/tool`` message answers it by this id.
    public var id: String
    /// The tool's name.
    public var name: String
    /// The arguments exactly as the JSON text the model produced.
    public var arguments: String
    /// Opaque state the provider attached to the call and needs back with it in the next turn (Gemini's
    /// `thoughtSignature`); only the provider it came from is sent it.
    public var providerState: ProviderState?

    /// Creates a tool call.
    public init(id: String, name: String, arguments: String, providerState: ProviderState? = nil) {
        self.id = id
        self.name = name
        self.arguments = arguments
        self.providerState = providerState
    }

    /// The arguments parsed, or `nil` when the model produced text that is not JSON.
    public var parsedArguments: JSONValue? {
        try? JSONValue(parsing: arguments)
    }
}

/// A fragment of a tool call in a stream.
public struct ToolCallDelta: Hashable, Sendable {
    /// Which call of the message this fragment belongs to (0 for the first).
    public var index: Int
    /// The call's id, in the first fragment.
    public var id: String?
    /// The tool's name, in the first fragment.
    public var name: String?
    /// The next piece of the arguments' JSON text.
    public var arguments: String
    /// The call's ``ToolCall/providerState``, in the fragment that carries it.
    public var providerState: ProviderState?

    /// Creates a tool call fragment.
    public init(index: Int, id: String? = nil, name: String? = nil, arguments: String = "") {
        self.index = index
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

/// Opaque state a provider attached to part of an answer, to be sent back to it (and only to it) in a later turn.
///
/// Gemini 3 rejects a follow-up turn whose function calls lost their `thoughtSignature`; the signature travels
/// with the ``ToolCall`` through the neutral model, and through a gateway client inside the call's id (see
/// ``encodedID(_:)``), back to the adapter that made it, which alone reads it.
public struct ProviderState: Hashable, Sendable {
    /// Who made it and may read it (`gemini:gemini-3-pro-preview`).
    public var origin: String
    /// The state itself.
    public var value: String

    /// Creates provider state.
    public init(origin: String, value: String) {
        self.origin = origin
        self.value = value
    }

    /// Between the id and the state. Only `[A-Za-z0-9_-]`, since Anthropic accepts no other character in a tool
    /// use id; the first occurrence counts (the state's base64url text may contain it by chance, an id should not).
    private static let marker = "_lfs1_"

    /// `id` with `state` encoded after it, for a client that keeps only a tool call's id and echoes it back.
    public static func encodedID(_ id: String, state: ProviderState?) -> String {
        guard let state else { return id }
        let payload = Array((state.origin + "\n" + state.value).utf8)
        return id + marker + base64URL(payload)
    }

    /// The id and the state of an id made by ``encodedID(_:state:)``; an id without state is returned as is.
    public static func decodeID(_ encoded: String) -> (id: String, state: ProviderState?) {
        guard let range = encoded.range(of: marker),
            let bytes = fromBase64URL(encoded[range.upperBound...]),
            let text = String(validating: bytes, as: UTF8.self),
            let newline = text.firstIndex(of: "\n")
        else { return (encoded, nil) }
        let state = ProviderState(origin: String(text[..<newline]), value: String(text[text.index(after: newline)...]))
        return (String(encoded[..<range.lowerBound]), state)
    }

    private static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    private static func fromBase64URL(_ text: Substring) -> [UInt8]? {
        guard text.utf8.count <= 1 << 20 else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}
