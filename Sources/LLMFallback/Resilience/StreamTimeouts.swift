/// Time limits of a streamed answer.
public struct StreamTimeouts: Hashable, Sendable {
    /// The longest wait for the first content; `nil` for no limit beyond the attempt's.
    public var firstToken: Duration?
    /// The longest silence between two chunks (a stall).
    public var idle: Duration?
    /// The longest a whole stream may take.
    public var total: Duration?

    /// Creates stream limits.
    public init(firstToken: Duration? = nil, idle: Duration? = nil, total: Duration? = nil) {
        self.firstToken = firstToken
        self.idle = idle
        self.total = total
    }
}
