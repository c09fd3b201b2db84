/// Realistic defaults for error responses, by HTTP status and provider.
enum ErrorCatalog {
    /// A message that fits `status`.
    static func message(for status: Int) -> String {
        switch status {
        case 400: "Invalid request."
        case 401: "Invalid API key provided."
        case 403: "Permission denied."
        case 404: "The requested model was not found."
        case 408: "Request timed out."
        case 413: "Request too large."
        case 429: "Rate limit exceeded. Please retry after a short wait."
        case 500: "The server had an error while processing your request."
        case 502: "Bad gateway."
        case 503: "The service is temporarily unavailable."
        case 504: "The request timed out."
        case 529: "Overloaded"
        default: "Mock error with status \(status)."
        }
    }

    /// OpenAI's error `type` for `status`.
    static func openAIType(for status: Int) -> String {
        switch status {
        case 429: "requests"
        case 500...: "server_error"
        default: "invalid_request_error"
        }
    }

    /// OpenAI's error `code` for `status`, if it has one.
    static func openAICode(for status: Int) -> String? {
        switch status {
        case 401: "invalid_api_key"
        case 404: "model_not_found"
        case 429: "rate_limit_exceeded"
        default: nil
        }
    }
}
