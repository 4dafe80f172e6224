import AuthCore
import AuthStore
import NIOConcurrencyHelpers

/// The shared `LoginThrottle` behind a lock, with the attempts that must
/// wait for pending ones, and write-through of counters to SQLite so a
/// restart does not reset them.
final class LoginGate: @unchecked Sendable {
    typealias Decided = @Sendable (LoginThrottle.Decision) -> Void

    private struct Waiter {
        let account: String
        let client: String
        let decided: Decided
    }

    private let lock = NIOLock()
    private var throttle: LoginThrottle
    private var waiters: [Waiter] = []
    private let database: AuthDatabase
    private let clock: @Sendable () -> Int64

    init(limits: LoginThrottle.Limits, database: AuthDatabase, clock: @escaping @Sendable () -> Int64) throws {
        self.throttle = LoginThrottle(limits: limits, counters: try database.loadFailureCounters())
        self.database = database
        self.clock = clock
    }

    func updateLimits(_ limits: LoginThrottle.Limits) {
        lock.withLock { throttle.limits = limits }
    }

    /// Calls `decided` with `.proceed` or `.limited`, now or once pending
    /// attempts on the same keys have finished.
    func begin(account: String, client: String, decided: @escaping Decided) {
        let decision = lock.withLock { () -> LoginThrottle.Decision in
            let decision = throttle.begin(account: account, client: client, now: clock())
            if decision == .wait { waiters.append(Waiter(account: account, client: client, decided: decided)) }
            return decision
        }
        if decision != .wait { decided(decision) }
    }

    /// Ends an attempt, persists the counters it changed, and lets waiting
    /// attempts decide again.
    func finish(account: String, client: String, outcome: LoginThrottle.Outcome) throws {
        let changes = lock.withLock {
            throttle.finish(account: account, client: client, outcome: outcome, now: clock())
        }
        defer { wakeWaiters() }
        guard !changes.isEmpty else { return }
        let keys = changes.map(\.key)
        try database.saveFailureCounters { [self] in
            lock.withLock { keys.map { LoginThrottle.Change(key: $0, counter: throttle.counters[$0]) } }
        }
    }

    func pruneExpired() {
        _ = lock.withLock { throttle.pruneExpired(now: clock()) }
    }

    private func wakeWaiters() {
        let ready = lock.withLock { () -> [(Decided, LoginThrottle.Decision)] in
            guard !waiters.isEmpty else { return [] }
            var ready: [(Decided, LoginThrottle.Decision)] = []
            var still: [Waiter] = []
            let now = clock()
            for waiter in waiters {
                let decision = throttle.begin(account: waiter.account, client: waiter.client, now: now)
                if decision == .wait { still.append(waiter) } else { ready.append((waiter.decided, decision)) }
            }
            waiters = still
            return ready
        }
        for (decided, decision) in ready { decided(decision) }
    }
}
