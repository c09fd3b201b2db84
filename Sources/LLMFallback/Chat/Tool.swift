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

    /// Creates a tool call.
    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
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

    /// Creates a tool call fragment.
    public init(index: Int, id: String? = nil, name: String? = nil, arguments: String = "") {
        self.index = index
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}
