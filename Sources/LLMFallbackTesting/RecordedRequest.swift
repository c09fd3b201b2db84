/// A request received by ``MockLLMServer``, recorded before it was answered.
///
/// ```swift
/// let request = try #require(server.requests(for: "gpt-4o").first)
/// #expect(request.format == .openAI)
/// #expect(request.header("authorization") == "Bearer sk-test")
/// let json = try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any]
/// ```
public struct RecordedRequest: Sendable {
    /// The HTTP method, such as `"POST"`.
    public var method: String

    /// The path without the query string, percent-encoding left as sent.
    public var path: String

    /// The query parameters, percent-decoded. When a name repeats, the last value wins.
    public var query: [String: String]

    /// The request headers in the order they were sent.
    public var headers: [(name: String, value: String)]

    /// The raw request body.
    public var body: [UInt8]

    /// The model the request asked for.
    ///
    /// Taken from the JSON body's `"model"` for OpenAI and Anthropic, from the path for Gemini
    /// (`/v1beta/models/{model}:generateContent`) and Azure (`/openai/deployments/{deployment}/...`).
    /// Empty when the request names none. Scripts are looked up by this value.
    public var model: String

    /// The wire format of the route the request arrived on.
    public var format: MockWireFormat

    /// Whether the request asked for a streamed answer: `"stream": true` in the body for OpenAI, Azure and
    /// Anthropic, the `:streamGenerateContent` method for Gemini.
    public var isStream: Bool

    /// Identifies the TCP connection the request arrived on: two requests carry the same value exactly when they
    /// shared a connection (keep-alive).
    public var connection: Int

    /// Creates a recorded request.
    ///
    /// The server records requests itself; this initialiser exists for tests that build expected values.
    public init(
        method: String,
        path: String,
        query: [String: String] = [:],
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = [],
        model: String,
        format: MockWireFormat,
        isStream: Bool,
        connection: Int = 0
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.model = model
        self.format = format
        self.isStream = isStream
        self.connection = connection
    }

    /// The body decoded as UTF-8 (invalid sequences are replaced), for parsing with the JSON decoder of your choice.
    public var bodyText: String {
        String(decoding: self.body, as: UTF8.self)
    }

    /// The value of the first header called `name`, compared case-insensitively, or `nil` when there is none.
    ///
    /// - Parameter name: The header name, in any case.
    /// - Returns: The header's value.
    public func header(_ name: String) -> String? {
        let name = name.lowercased()
        return self.headers.first { $0.name.lowercased() == name }?.value
    }
}
