/// The author of a ``Message``.
///
/// A struct rather than an enum so that roles a provider adds later do not break existing `switch` statements.
public struct Role: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Instructions that frame the conversation.
    public static let system = Role(rawValue: "system")
    /// The person or program asking.
    public static let user = Role(rawValue: "user")
    /// The model.
    public static let assistant = Role(rawValue: "assistant")
    /// The result of a tool call the model asked for.
    public static let tool = Role(rawValue: "tool")

    public var description: String { rawValue }
}

/// Where an image comes from.
public enum ImageSource: Hashable, Sendable {
    /// An `https:` or `data:` URL, with OpenAI's optional `detail` hint (`low`, `high`, `auto`).
    case url(String, detail: String? = nil)
    /// Base64-encoded bytes and their media type, such as `image/png`.
    case base64(String, mediaType: String)
}

/// One part of a multi-part message.
public enum ContentPart: Hashable, Sendable {
    /// Plain text.
    case text(String)
    /// An image.
    case image(ImageSource)
}

/// What a message says: plain text, or a sequence of parts (text and images).
public enum Content: Hashable, Sendable, ExpressibleByStringLiteral {
    /// Plain text.
    case text(String)
    /// Several parts, in order.
    case parts([ContentPart])

    public init(stringLiteral value: String) { self = .text(value) }

    /// The text of the content; for parts, the text parts joined without separator.
    public var text: String {
        switch self {
        case .text(let text): return text
        case .parts(let parts):
            var result = ""
            for case .text(let text) in parts { result += text }
            return result
        }
    }

    /// The content as parts, wrapping plain text in a single text part.
    public var parts: [ContentPart] {
        switch self {
        case .text(let text): return [.text(text)]
        case .parts(let parts): return parts
        }
    }

    /// Whether the content holds nothing at all.
    public var isEmpty: Bool {
        switch self {
        case .text(let text): return text.isEmpty
        case .parts(let parts): return parts.isEmpty
        }
    }
}

/// One turn of a conversation.
///
/// ```swift
/// let messages: [Message] = [
///     .system("You are terse."),
///     .user("What is 2 + 2?"),
/// ]
/// ```
public struct Message: Hashable, Sendable {
    /// Who speaks.
    public var role: Role
    /// What is said.
    public var content: Content
    /// An optional participant name (OpenAI's `name`).
    public var name: String?
    /// The tool calls an assistant message made.
    public var toolCalls: [ToolCall]
    /// For a ``Role/tool`` message: the id of the call this answers.
    public var toolCallID: String?
    /// For a ``Role/tool`` message: the name of the tool that ran (Gemini needs it; filled in from the
    /// conversation when absent).
    public var toolName: String?
    /// For a ``Role/tool`` message: whether the tool failed, so that the content is its error (Anthropic's
    /// `is_error`; Gemini's `functionResponse.response.error`). OpenAI's format has no such field: its providers
    /// get the content alone, and the flag is reported as dropped (`tool_result.is_error`).
    public var isError = false

    /// Creates a message.
    public init(
        role: Role,
        content: Content,
        name: String? = nil,
        toolCalls: [ToolCall] = [],
        toolCallID: String? = nil,
        toolName: String? = nil
    ) {
        self.role = role
        self.content = content
        self.name = name
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.toolName = toolName
    }

    /// A system message.
    public static func system(_ text: String) -> Message { Message(role: .system, content: .text(text)) }
    /// A user message with text.
    public static func user(_ text: String) -> Message { Message(role: .user, content: .text(text)) }
    /// A user message with several parts (text and images).
    public static func user(_ parts: [ContentPart]) -> Message { Message(role: .user, content: .parts(parts)) }
    /// An assistant message with text and, optionally, the tool calls it made.
    public static func assistant(_ text: String, toolCalls: [ToolCall] = []) -> Message {
        Message(role: .assistant, content: .text(text), toolCalls: toolCalls)
    }
    /// The result of a tool call, answering the call with id `callID`.
    public static func tool(callID: String, name: String? = nil, content: String) -> Message {
        Message(role: .tool, content: .text(content), toolCallID: callID, toolName: name)
    }
}
