import FuzzDriver
@_spi(Fuzzing) import LLMFallback

// libFuzzer's driver runs the entry point on every input (build with -sanitize=fuzzer; see ../../README.md).
fuzz { FuzzEntryPoints.targets["FuzzOpenAIResponseReader"]!($0) }
