/// A client's request that a wire format's server half cannot turn into a ``ChatRequest``: what is wrong, and
/// where, in the words OpenAI's API uses for the same mistakes.
public struct WireRequestError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, naming the member.
    public var message: String
    /// The member's path (`messages[2].content`), when one is at fault.
    public var param: String?
    /// A machine-readable reason: `missing_required_parameter`, `invalid_type`, `invalid_value`,
    /// `duplicate_key`, `invalid_json`.
    public var code: String?

    /// Creates the error.
    public init(_ message: String, param: String? = nil, code: String? = nil) {
        self.message = message
        self.param = param
        self.code = code
    }

    public var description: String { message }

    static func missing(_ path: String) -> WireRequestError {
        WireRequestError("missing required parameter: '\(path)'", param: path, code: "missing_required_parameter")
    }

    static func type(_ path: String, expected: String, got value: JSONValue) -> WireRequestError {
        let got: String
        switch value {
        case .null: got = "null"
        case .bool: got = "a boolean"
        case .int, .double, .number: got = "a number"
        case .string: got = "a string"
        case .array: got = "an array"
        case .object: got = "an object"
        }
        return WireRequestError("invalid type for '\(path)': expected \(expected), got \(got)", param: path, code: "invalid_type")
    }

    static func value(_ message: String, param: String) -> WireRequestError {
        WireRequestError(message, param: param, code: "invalid_value")
    }

    /// The error for a body that is not JSON, or repeats a key.
    static func syntax(_ error: JSONSyntaxError) -> WireRequestError {
        if let key = error.duplicateKey {
            let place = error.duplicateKeyDepth == 1 ? "the request body" : "an object of the request body"
            return WireRequestError(
                "the key '\(key.prefix(64))' appears twice in \(place): send each member once", param: String(key.prefix(64)),
                code: "duplicate_key")
        }
        return WireRequestError("the request body is not valid JSON: \(error)", code: "invalid_json")
    }
}
