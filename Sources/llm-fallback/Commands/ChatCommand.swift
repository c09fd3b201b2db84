import ArgumentParser
import Foundation
import LLMFallback

/// `llm-fallback chat`: one question through the configured chain.
struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Ask a question through the fallback chain.",
        discussion: """
            Uses the chain named by --chain (default: "default") from the configuration file. Without a file, \
            the chain is built from the keys found in the environment: OPENAI_API_KEY (gpt-4o-mini), \
            ANTHROPIC_API_KEY (claude-3-5-haiku-latest), GEMINI_API_KEY or GOOGLE_API_KEY (gemini-2.0-flash), \
            then GROQ_API_KEY, MISTRAL_API_KEY, DEEPSEEK_API_KEY, TOGETHER_API_KEY, FIREWORKS_API_KEY, \
            OPENROUTER_API_KEY, XAI_API_KEY, PERPLEXITY_API_KEY, CEREBRAS_API_KEY.

            Exit status: 0 answered; 1 every provider failed (the attempt trace is printed on standard error); \
            2 usage or configuration error. Keys are never printed.

            Examples:
              llm-fallback chat "What is the capital of France?"
              echo "Summarise this" | llm-fallback chat --stream
              llm-fallback chat --json --verbose --chain fast "Hello"
            """
    )

    @Argument(help: "The prompt (several words are joined with spaces). Read from standard input when omitted.")
    var prompt: [String] = []

    @Option(help: "A system message to frame the conversation.")
    var system: String?

    @Option(help: "Sampling temperature, from 0 to 2.")
    var temperature: Double?

    @Option(name: .customLong("max-tokens"), help: "The most tokens to generate.")
    var maxTokens: Int?

    @Flag(help: "Print the answer as it is generated.")
    var stream = false

    @Flag(
        help:
            "Print the whole response as JSON (content, provider, model, latency, attempts, usage, trace). With --stream, one JSON object per line: the text deltas, then the whole response."
    )
    var json = false

    @Option(help: "The chain to use from the configuration file (default: \"default\").")
    var chain: String?

    @Option(
        help: ArgumentHelp(
            "Time limit for the whole request, failovers included (overrides the chain's request_timeout), e.g. 30s.",
            valueName: "duration"
        )
    )
    var timeout: String?

    @Option(help: "Routing strategy, overriding the chain's: ordered, latency, weighted or round_robin.")
    var strategy: String?

    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var verboseOptions: VerboseOptions

    func validate() throws {
        if let temperature, !(0...2).contains(temperature) {
            throw ValidationError("--temperature must be between 0 and 2")
        }
        if let maxTokens, maxTokens < 1 {
            throw ValidationError("--max-tokens must be at least 1")
        }
        if let timeout, DurationText.parse(timeout) == nil || DurationText.parse(timeout) == .zero {
            throw ValidationError("--timeout: invalid duration '\(timeout)' (expected e.g. 30s, 250ms)")
        }
        if let strategy, RoutingStrategy(name: strategy) == nil {
            throw ValidationError(
                "--strategy: unknown strategy '\(strategy)' (expected one of: ordered, latency, weighted, round_robin)"
            )
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let source = try ChainSource.load(configOptions, environment: environment)
        var settings = try source.chain(named: chain)
        if let timeout { settings.configuration.requestTimeout = DurationText.parse(timeout) }
        if let strategy {
            settings.configuration.strategy = RoutingStrategy(name: strategy) ?? settings.configuration.strategy
        }

        var messages: [Message] = []
        if let system { messages.append(.system(system)) }
        messages.append(.user(try readPrompt()))
        let request = ChatRequest(messages: messages, temperature: temperature, maxTokens: maxTokens)

        let verbose = verboseOptions.verbose
        if verbose {
            let names = settings.providers.map(\.name).joined(separator: ", ")
            Console.errLine(
                "chain '\(settings.name)' from \(source.origin), \(settings.configuration.strategy): \(names)"
            )
        }
        let (answers, answered) = AsyncStream<ChatResponse>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let fallbackChain = settings.makeChain(logger: CommandLogging.logger(verbose: verbose)) { answered.yield($0) }

        let response: ChatResponse
        do {
            if stream {
                response = try await streamAnswer(fallbackChain, request: request, answers: answers)
            } else {
                response = try await fallbackChain.chat(request)
                printAnswer(response)
            }
        } catch {
            throw FailureReport.report(error)
        }
        if verbose {
            let attempts = "\(response.attempts) attempt\(response.attempts == 1 ? "" : "s")"
            Console.errLine(
                "answered by \(response.providerName) (\(response.model)) in \(DurationText.format(response.latency)), \(attempts)"
            )
        }
    }

    /// The prompt from the arguments, else from standard input.
    private func readPrompt() throws -> String {
        var text = prompt.joined(separator: " ")
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            if Console.stdinIsTerminal {
                Console.errLine("Type the prompt, then press Ctrl-D:")
            }
            let data = FileHandle.standardInput.readDataToEndOfFile()
            text = String(decoding: data, as: UTF8.self)
        }
        text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else {
            throw ValidationError("no prompt: give it as an argument or on standard input")
        }
        return text
    }

    private func printAnswer(_ response: ChatResponse) {
        if json {
            Console.outLine(ResponseJSON.text(ResponseJSON.response(response)))
            return
        }
        if !response.content.isEmpty || response.toolCalls.isEmpty {
            Console.outLine(response.content)
        }
        for call in response.toolCalls {
            Console.outLine("tool call \(call.name)(\(call.arguments))")
        }
    }

    /// Streams the answer to standard output and returns the whole response.
    private func streamAnswer(_ chain: FallbackChain, request: ChatRequest, answers: AsyncStream<ChatResponse>)
        async throws -> ChatResponse
    {
        var content = ""
        var lastProvider = ""
        var lastModel = ""
        var finishReason: FinishReason?
        var usage: Usage?
        var calls: [Int: (id: String, name: String, arguments: String)] = [:]
        for try await chunk in chain.stream(request) {
            if chunk.kind == .restart {
                content = ""
                calls = [:]
                if json {
                    Console.outLine(ResponseJSON.text(["type": "restart"], pretty: false))
                } else {
                    Console.out("\n")
                    Console.errLine("[the answer restarts on another provider]")
                }
                continue
            }
            if !chunk.provider.isEmpty { lastProvider = chunk.provider }
            if !chunk.model.isEmpty { lastModel = chunk.model }
            if let reason = chunk.finishReason { finishReason = reason }
            if let chunkUsage = chunk.usage { usage = chunkUsage }
            for delta in chunk.toolCallDeltas {
                var call = calls[delta.index] ?? (id: "", name: "", arguments: "")
                if let id = delta.id { call.id = id }
                if let name = delta.name { call.name = name }
                call.arguments += delta.arguments
                calls[delta.index] = call
            }
            guard !chunk.content.isEmpty else { continue }
            content += chunk.content
            if json {
                Console.outLine(ResponseJSON.text(["type": "delta", "content": .string(chunk.content)], pretty: false))
            } else {
                Console.out(chunk.content)
            }
        }
        let toolCalls = calls.sorted { $0.key < $1.key }.map {
            ToolCall(id: $0.value.id, name: $0.value.name, arguments: $0.value.arguments)
        }
        // The chain reports the finished stream (provider name, latency, trace) through onSuccess, just before
        // the stream ends; wait for it briefly, else describe the answer from the chunks.
        var response =
            await Self.first(of: answers, within: .seconds(2))
            ?? ChatResponse(
                content: content,
                finishReason: finishReason,
                usage: usage,
                provider: lastProvider,
                model: lastModel
            )
        response.content = content
        response.toolCalls = toolCalls
        if response.finishReason == nil { response.finishReason = finishReason }
        if response.usage == nil { response.usage = usage }
        if json {
            var object = ResponseJSON.response(response).members ?? [:]
            object["type"] = "response"
            Console.outLine(ResponseJSON.text(.object(object), pretty: false))
        } else {
            if !content.hasSuffix("\n") { Console.out("\n") }
            for call in toolCalls {
                Console.outLine("tool call \(call.name)(\(call.arguments))")
            }
        }
        return response
    }

    private static func first(of answers: AsyncStream<ChatResponse>, within limit: Duration) async -> ChatResponse? {
        await withTaskGroup(of: ChatResponse?.self) { group in
            group.addTask {
                for await answer in answers { return answer }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
