import NIOCore
import NIOHTTP1

#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Serves the requests of one connection: records each request, then performs the steps of its scripted behaviour.
///
/// It sits behind NIO's HTTP server pipeline, whose pipelining handler hands it one request at a time and holds
/// back the next until the current response has ended. All its methods run on the connection's event loop.
final class MockHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private struct ActiveResponse {
        /// Tells this response's write and timer callbacks from those of a later response.
        var serial: Int
        var ticket: ServerState.Ticket
        var version: HTTPVersion
        var keepAlive: Bool
        var steps: ArraySlice<ResponseStep>
        var pendingPause: Scheduled<Void>?
    }

    private enum Phase {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        case responding(ActiveResponse)
        case closed
    }

    private let state: ServerState
    private let connection: Int
    private var phase = Phase.idle
    private var responseSerial = 0
    /// Whether ``drive(context:)`` is on the stack: a write that completes at once (a writable socket) asks for
    /// the next step from inside the previous one, and a scripted stream of thousands of chunks then recursed
    /// until the event loop's stack overflowed. The loop in `drive` takes those steps instead.
    private var isDriving = false
    private var stepRequested = false
    /// Set when this side closes the connection, so that the close is not taken for the client's.
    private var isClosingByServer = false

    init(state: ServerState, connection: Int) {
        self.state = state
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.phase = .receiving(head, context.channel.allocator.buffer(capacity: 0))
        case .body(var chunk):
            guard case .receiving(let head, var body) = self.phase else { return }
            self.phase = .idle  // drop the stored copy so that appending does not copy the buffer
            body.writeBuffer(&chunk)
            self.phase = .receiving(head, body)
        case .end:
            guard case .receiving(let head, let body) = self.phase else { return }
            self.respond(to: head, body: body, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let previous = self.phase
        self.phase = .closed
        if case .responding(let response) = previous {
            response.pendingPause?.cancel()
            if !self.isClosingByServer {
                self.state.requestAbandoned(response.ticket)
            }
        }
        self.state.connectionClosed(self.connection)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset by the client, a write to a closed socket, an unparsable request: this connection is done.
        context.close(promise: nil)
    }

    // MARK: Responding

    private func respond(to head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        let request = RequestParser.parse(head: head, body: body, connection: self.connection)
        let (ticket, responseID, scripted) = self.state.record(request.recorded)
        let format = request.recorded.format
        let behaviour =
            scripted
            ?? .status(
                404,
                message: "Unknown request URL: \(head.method.rawValue) \(request.recorded.path).",
                type: "invalid_request_error",
                code: "unknown_url"
            )
        let planner = ResponsePlanner(
            renderer: format.renderer,
            context: ResponseContext(
                model: request.recorded.model,
                responseID: responseID,
                includeUsage: request.includeUsage
            ),
            isStream: request.recorded.isStream
        )
        self.responseSerial += 1
        self.phase = .responding(
            ActiveResponse(
                serial: self.responseSerial,
                ticket: ticket,
                version: head.version,
                keepAlive: head.isKeepAlive,
                steps: planner.steps(for: behaviour)[...]
            )
        )
        self.drive(context: context)
    }

    /// Takes steps until one waits (for a write, a pause or the next request), iteratively.
    private func drive(context: ChannelHandlerContext) {
        if self.isDriving {
            self.stepRequested = true
            return
        }
        self.isDriving = true
        defer { self.isDriving = false }
        var steps = 0
        repeat {
            self.stepRequested = false
            if steps == Self.stepsPerTurn, case .responding(let response) = self.phase {
                // Give the event loop back now and then: a long stream written in one go starved every other
                // connection on this loop (other tests' servers and clients) for seconds.
                let serial = response.serial
                context.eventLoop.assumeIsolated().execute { self.continueResponse(serial, context: context) }
                return
            }
            steps += 1
            self.performNextStep(context: context)
        } while self.stepRequested
    }

    private static let stepsPerTurn = 64

    /// Performs the next step of the current response; steps that complete later call back into ``drive(context:)``.
    private func performNextStep(context: ChannelHandlerContext) {
        guard case .responding(var response) = self.phase, let step = response.steps.popFirst() else { return }
        self.phase = .responding(response)
        let serial = response.serial

        switch step {
        case .head(let status, var headers):
            if !response.keepAlive {
                headers.replaceOrAdd(name: "connection", value: "close")
            }
            let head = HTTPResponseHead(version: response.version, status: status, headers: headers)
            self.write(.head(head), serial: serial, context: context)

        case .body(let bytes):
            self.write(.body(.byteBuffer(bytes)), serial: serial, context: context)

        case .pause(let delay):
            response.pendingPause = context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
                self.continueResponse(serial, context: context)
            }
            self.phase = .responding(response)

        case .end:
            // The response is complete. Go idle before writing the end: the pipelining handler may deliver the
            // next request from inside this write.
            self.phase = .idle
            let keepAlive = response.keepAlive
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if !keepAlive {
                    self.isClosingByServer = true
                    context.close(promise: nil)
                }
            }

        case .close:
            self.isClosingByServer = true
            context.close(promise: nil)

        case .reset:
            self.isClosingByServer = true
            let noLinger = linger(l_onoff: 1, l_linger: 0)
            if let options = context.channel as? any SocketOptionProvider {
                options.setSoLinger(noLinger).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            } else {
                context.close(promise: nil)
            }

        case .stall:
            break
        }
    }

    /// Writes and flushes `part` on its own, then goes on with the response once the write has completed.
    private func write(_ part: HTTPServerResponsePart, serial: Int, context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(part)).assumeIsolated().whenComplete { result in
            // A failed write means the connection is closing; channelInactive accounts for the response.
            guard case .success = result else { return }
            self.continueResponse(serial, context: context)
        }
    }

    private func continueResponse(_ serial: Int, context: ChannelHandlerContext) {
        guard case .responding(var response) = self.phase, response.serial == serial else { return }
        response.pendingPause = nil
        self.phase = .responding(response)
        self.drive(context: context)
    }
}
