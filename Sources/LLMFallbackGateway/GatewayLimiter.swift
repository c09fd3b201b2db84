import Synchronization

/// The places a gateway has for concurrent work: requests and open streams (see
/// ``GatewayConfiguration/Limits``). One atomic counter each: taking or giving back a place is one atomic add,
/// with no lock and no queue; a request that finds no place is refused at once.
final class GatewayLimiter: Sendable {
    /// Places for chat completions, streams included.
    let requests: Places
    /// Places for open streams.
    let streams: Places

    init(_ limits: GatewayConfiguration.Limits) {
        requests = Places(limit: limits.maxConcurrentRequests)
        streams = Places(limit: limits.maxOpenStreams)
    }

    /// A number of places, taken and given back with one atomic operation each.
    final class Places: Sendable {
        /// How many there are.
        let limit: Int
        private let taken = Atomic<Int>(0)

        init(limit: Int) {
            self.limit = limit
        }

        /// Takes a place, if one is free.
        ///
        /// - Returns: Whether a place was taken (then ``release()`` must follow, once).
        func tryAcquire() -> Bool {
            // Optimistic: add, and take it back when over. Concurrent refusals may briefly count above the limit,
            // never admit beyond it.
            let now = taken.wrappingAdd(1, ordering: .relaxed).newValue
            if now > limit {
                taken.wrappingSubtract(1, ordering: .relaxed)
                return false
            }
            return true
        }

        /// Gives a place back.
        func release() {
            taken.wrappingSubtract(1, ordering: .relaxed)
        }

        /// The places taken right now (for tests and metrics).
        var inUse: Int { max(0, taken.load(ordering: .relaxed)) }
    }
}

extension GatewayError {
    /// Every place for a request (or a stream) is taken: `503` with `Retry-After: 1`, at once.
    static func overloaded(what: String, limit: Int) -> GatewayError {
        GatewayError(
            status: 503,
            message: "the gateway is handling as many \(what) as it may (\(limit)); retry shortly",
            type: "server_error",
            code: "gateway_overloaded",
            retryAfterSeconds: 1
        )
    }
}
