import Synchronization

/// Builds the ``NetworkFixture`` once per benchmark process, from the benchmarks' setup hook, and hands it to the
/// measured closures without an actor hop.
public final class FixtureHolder: Sendable {
    private let state = Mutex<NetworkFixture?>(nil)

    public init() {}

    /// Builds the fixture unless it exists (setup hooks run before every benchmark).
    public func prepare() async throws {
        if state.withLock({ $0 != nil }) { return }
        let fixture = try await NetworkFixture.make()
        state.withLock { $0 = $0 ?? fixture }
    }

    /// The fixture; call ``prepare()`` first.
    public var fixture: NetworkFixture {
        guard let fixture = state.withLock({ $0 }) else {
            fatalError("FixtureHolder.prepare() was not called")
        }
        return fixture
    }
}
