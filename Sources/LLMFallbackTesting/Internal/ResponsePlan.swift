import NIOCore
import NIOHTTP1

/// One step of a response, performed in order by the connection handler.
enum ResponseStep: Sendable {
    /// Send the response head.
    case head(HTTPResponseStatus, HTTPHeaders)
    /// Send a piece of the body, flushed on its own.
    case body(ByteBuffer)
    /// Wait on the event loop before the next step.
    case pause(TimeAmount)
    /// End the response cleanly (the final empty chunk of a chunked body).
    case end
    /// Close the connection, leaving the response unfinished.
    case close
    /// Close the connection with a TCP reset.
    case reset
    /// Do nothing more, keeping the connection open.
    case stall
}

/// Turns a ``MockBehavior`` into the ``ResponseStep``s answering one request.
struct ResponsePlanner {
    /// How long a cut stream waits after its last chunk before closing the connection.
    ///
    /// Some clients discard the body bytes that arrive in the same read as the end of the connection
    /// (AsyncHTTPClient forwards body parts only when a read completes, and fails the stream first when the
    /// connection drops during the read). The pause lets the last chunks arrive in a read of their own, so that the
    /// client sees every chunk the behaviour promised.
    static let gracePeriodBeforeCut = TimeAmount.milliseconds(200)

    var renderer: any WireRenderer
    var context: ResponseContext
    /// Whether the request asked for a stream.
    var isStream: Bool

    func steps(for behaviour: MockBehavior) -> [ResponseStep] {
        switch behaviour.kind {
        case .answer(let answer):
            guard self.isStream else {
                return self.json(status: 200, self.renderer.body(for: answer, in: self.context))
            }
            let events = self.renderer.stream(for: answer, in: self.context, finished: true)
            return self.sse(events.opening + events.content + events.closing) + [.end]

        case .status(let error, let headers):
            return self.json(status: error.status, self.renderer.errorBody(for: error), headers: headers)

        case .raw(let status, let headers, let body):
            var httpHeaders = HTTPHeaders(headers.map { ($0.key, $0.value) })
            if !httpHeaders.contains(name: "content-length") && !httpHeaders.contains(name: "transfer-encoding") {
                httpHeaders.add(name: "content-length", value: String(body.utf8.count))
            }
            return [.head(HTTPResponseStatus(statusCode: status), httpHeaders), .body(ByteBuffer(string: body)), .end]

        case .rawParts(let status, let headers, let parts):
            let httpHeaders = HTTPHeaders(headers.map { ($0.key, $0.value) })
            return [.head(HTTPResponseStatus(statusCode: status), httpHeaders)]
                + parts.map { .body(ByteBuffer(string: $0)) } + [.end]

        case .delayed(let delay, let then):
            return [.pause(TimeAmount(delay))] + self.steps(for: then)

        case .chunkDelay(let delay, let then):
            return Self.paced(self.steps(for: then), by: TimeAmount(delay))

        case .cutStream(let count, let text):
            guard self.isStream else { return self.truncatedJSON(.text(text)) + [.close] }
            let events = self.renderer.stream(for: .text(text), in: self.context, finished: false)
            let sent = events.opening + events.content.prefix(count)
            return self.sse(sent) + [.pause(Self.gracePeriodBeforeCut), .close]

        case .missingTerminator(let text):
            guard self.isStream else {
                return self.json(status: 200, self.renderer.body(for: .text(text), in: self.context))
            }
            let events = self.renderer.stream(for: .text(text), in: self.context, finished: false)
            return self.sse(events.opening + events.content) + [.end]

        case .malformedChunk(let count, let text):
            guard self.isStream else { return self.json(status: 200, "{not json") }
            let events = self.renderer.stream(for: .text(text), in: self.context, finished: true)
            let count = min(count, events.content.count)
            let malformed = events.content[..<count] + [self.renderer.malformedEvent] + events.content[count...]
            return self.sse(events.opening + malformed + events.closing) + [.end]

        case .streamError(let count, let error, let text):
            guard self.isStream else { return self.json(status: error.status, self.renderer.errorBody(for: error)) }
            let events = self.renderer.stream(for: .text(text), in: self.context, finished: false)
            let errorEvent = self.renderer.streamErrorEvent(for: error)
            return self.sse(events.opening + events.content.prefix(count) + [errorEvent]) + [.end]

        case .hang:
            return [.stall]

        case .reset:
            return [.reset]

        case .stallAfter(let count, let text):
            guard self.isStream else { return self.truncatedJSON(.text(text)) + [.stall] }
            let events = self.renderer.stream(for: .text(text), in: self.context, finished: false)
            return self.sse(events.opening + events.content.prefix(count)) + [.stall]
        }
    }

    /// A complete JSON response.
    private func json(status: Int, _ body: String, headers extra: [String: String] = [:]) -> [ResponseStep] {
        var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", String(body.utf8.count))])
        for (name, value) in extra {
            headers.replaceOrAdd(name: name, value: value)
        }
        return [.head(HTTPResponseStatus(statusCode: status), headers), .body(ByteBuffer(string: body)), .end]
    }

    /// The head of a `200` JSON answer announcing its full length, and the first half of its body.
    private func truncatedJSON(_ answer: MockAnswer) -> [ResponseStep] {
        let body = Array(self.renderer.body(for: answer, in: self.context).utf8)
        let headers = HTTPHeaders([("content-type", "application/json"), ("content-length", String(body.count))])
        return [.head(.ok, headers), .body(ByteBuffer(bytes: body.prefix(body.count / 2)))]
    }

    /// The head of a `200` event stream (chunked, as no length is given) and one body piece per event.
    private func sse<Events: Sequence<String>>(_ events: Events) -> [ResponseStep] {
        let headers = HTTPHeaders([("content-type", "text/event-stream"), ("cache-control", "no-cache")])
        return [.head(.ok, headers)] + events.map { .body(ByteBuffer(string: $0)) }
    }

    /// `steps` with a pause between every two consecutive body pieces.
    private static func paced(_ steps: [ResponseStep], by delay: TimeAmount) -> [ResponseStep] {
        var paced: [ResponseStep] = []
        var previousWasBody = false
        for step in steps {
            if case .body = step {
                if previousWasBody { paced.append(.pause(delay)) }
                previousWasBody = true
            } else {
                previousWasBody = false
            }
            paced.append(step)
        }
        return paced
    }
}
