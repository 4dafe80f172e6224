/// The service's two clocks, as parameters so tests can set them: wall
/// seconds for token times and windows, and monotonic microseconds for
/// latencies (which must not jump with the wall clock).
public struct ServiceClock: Sendable {
    public var now: @Sendable () -> Int64
    public var microseconds: @Sendable () -> Int64

    public init(now: @escaping @Sendable () -> Int64, microseconds: @escaping @Sendable () -> Int64) {
        self.now = now
        self.microseconds = microseconds
    }
}
