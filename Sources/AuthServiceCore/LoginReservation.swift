import AuthCore

/// What a store shared by several daemons answers a login attempt that asks
/// for a place in the shared failure counters (`reserveLoginAttempt`).
/// Each case carries both keys' counters as the store holds them, which
/// the daemon adopts in place of its own.
public enum LoginReservation: Sendable, Equatable {
    /// A place is held under this id until `finishLoginAttempt`, or until
    /// it expires.
    case reserved(id: Int64, counters: [String: LoginThrottle.Counter])
    /// A limit is reached: `429` for `retryAfter` seconds.
    case limited(retryAfter: Int, counters: [String: LoginThrottle.Counter])
    /// Attempts pending on other daemons could reach the limit: ask again
    /// once they are done.
    case wait(counters: [String: LoginThrottle.Counter])
}
