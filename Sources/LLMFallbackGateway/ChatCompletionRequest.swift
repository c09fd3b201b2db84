import LLMFallback
import NIOCore

/// An OpenAI `POST /v1/chat/completions` body, decoded by the OpenAI format's server half.
typealias ChatCompletionRequest = OpenAIChatServer.Request

extension OpenAIChatServer.Request {
    /// Decodes a request body, turning every failure into a `400` that says what was wrong and where.
    ///
    /// - Throws: ``GatewayError`` (`400 invalid_request_error`).
    static func decode(_ body: ByteBuffer) throws(GatewayError) -> ChatCompletionRequest {
        do {
            return try OpenAIChatServer.decodeRequest(body)
        } catch {
            throw GatewayError.invalidRequest(error.message, param: error.param, code: error.code)
        }
    }
}
