# The fuzz targets, in the order do_build.sh and run.sh go through them (sourced by both).
# shellcheck disable=SC2034
FUZZ_TESTS=(
  FuzzSSE
  FuzzJSONReader
  FuzzFastJSON
  FuzzOpenAIResponseReader
  FuzzOpenAIResponse
  FuzzOpenAIStream
  FuzzOpenAIError
  FuzzAnthropicResponse
  FuzzAnthropicStream
  FuzzAnthropicError
  FuzzGeminiResponse
  FuzzGeminiStream
  FuzzGeminiError
  FuzzHTTPClient
  FuzzGatewayRequest
  FuzzConfig
)
