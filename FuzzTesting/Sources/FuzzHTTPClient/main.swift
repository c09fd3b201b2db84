import FuzzDriver
@_spi(Fuzzing) import LLMFallback
import NIOCore
import NIOEmbedded

/// Runs the lean HTTP client's connection (``HTTPClientFuzzHarness``: the request encoder, NIO's response decoder
/// and `HTTP1Connection`) in an `EmbeddedChannel` and feeds the input as the server's bytes, in pieces of 32, so
/// that a response is completed within one read as well as streamed across reads. Then the drain and request
/// timers fire and the channel closes.
///
/// One request only: a second one on a connection that closed, or that the server closes before answering, is
/// retried on a new connection, and the pool would open a real one.
///
/// The input is what the server sends: status lines, headers and bodies, for one or more responses.
func fuzzHTTPClient(_ input: UnsafeRawBufferPointer) {
    let channel = EmbeddedChannel()
    let harness = HTTPClientFuzzHarness(eventLoop: channel.eventLoop)
    do {
        try harness.addHandlers(to: channel.pipeline.syncOperations)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
    } catch {
        preconditionFailure("fuzz harness: cannot set up the EmbeddedChannel: \(error)")
    }
    harness.sendRequest()
    var start = 0
    while start < input.count {
        let end = min(input.count, start + 32)
        _ = try? channel.writeInbound(ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: input[start..<end])))
        channel.embeddedEventLoop.run()
        start = end
        while case .some(.some) = try? channel.readOutbound(as: IOData.self) {}
    }
    // The drain timeout (2 s), then the close, then every other timer.
    channel.embeddedEventLoop.advanceTime(by: .seconds(3))
    channel.embeddedEventLoop.run()
    _ = try? channel.finish()
    channel.embeddedEventLoop.advanceTime(by: .seconds(120))
    channel.embeddedEventLoop.run()
}

// libFuzzer's driver runs the entry point on every input (build with -sanitize=fuzzer; see ../../README.md).
fuzz { fuzzHTTPClient($0) }
