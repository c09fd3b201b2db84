import FuzzDriver
@_spi(Fuzzing) import LLMFallbackGateway

// libFuzzer's driver runs the entry point on every input (build with -sanitize=fuzzer; see ../../README.md).
fuzz { GatewayFuzzEntryPoints.chatCompletionRequest($0) }
