/// The wire format a request to ``MockLLMServer`` was recognised as, chosen by its route.
///
/// The server answers each request in the format of its route:
///
/// | format | route |
/// | --- | --- |
/// | ``openAI`` | `POST /v1/chat/completions` |
/// | ``azure`` | `POST /openai/deployments/{deployment}/chat/completions?api-version=...` |
/// | ``anthropic`` | `POST /v1/messages` |
/// | ``gemini`` | `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse` |
///
/// A request that matches no route is recorded as ``unknown`` and answered `404` with an OpenAI-format error.
///
/// ```swift
/// #expect(server.requests.last?.format == .gemini)
/// ```
public struct MockWireFormat: Sendable, Hashable, CustomStringConvertible {
    private enum Kind: String, Sendable, Hashable {
        case openAI
        case azure
        case anthropic
        case gemini
        case unknown
    }

    private let kind: Kind

    private init(_ kind: Kind) {
        self.kind = kind
    }

    /// OpenAI Chat Completions.
    public static let openAI = MockWireFormat(.openAI)
    /// Azure OpenAI: the OpenAI format, with the model named by the deployment in the path.
    public static let azure = MockWireFormat(.azure)
    /// Anthropic Messages.
    public static let anthropic = MockWireFormat(.anthropic)
    /// Google Gemini `generateContent` / `streamGenerateContent`.
    public static let gemini = MockWireFormat(.gemini)
    /// A request that matched none of the routes.
    public static let unknown = MockWireFormat(.unknown)

    /// The format's name, such as `"openAI"`.
    public var description: String {
        self.kind.rawValue
    }
}
