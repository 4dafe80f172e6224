/// Refreshes per session per second, as a pure fixed-window counter: at most
/// `limit` in each whole second of `now`. An account that refreshes in a
/// loop can otherwise keep a store writer busy for as long as it likes.
public struct RefreshRateLimiter: Sendable {
    public var limit: Int
    private var windows: [String: (second: Int64, count: Int)] = [:]

    public init(limit: Int) {
        self.limit = limit
    }

    public enum Decision: Sendable, Equatable {
        case allowed
        case limited(retryAfter: Int)
    }

    /// Counts one refresh of `sessionID` at `now` (Unix seconds), or refuses it.
    public mutating func admit(sessionID: String, now: Int64) -> Decision {
        if windows.count > 100_000 { prune(now: now) }
        var window = windows[sessionID] ?? (now, 0)
        if window.second != now { window = (now, 0) }
        guard window.count < limit else { return .limited(retryAfter: 1) }
        window.count += 1
        windows[sessionID] = window
        return .allowed
    }

    /// Drops windows of past seconds.
    public mutating func prune(now: Int64) {
        windows = windows.filter { $0.value.second >= now }
    }

    public var trackedSessions: Int { windows.count }
}
