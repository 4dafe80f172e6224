import AuthCore

/// The shared `LoginThrottle` behind a lock, with the attempts that must
/// wait for pending ones, and write-through of counters to SQLite so a
/// restart does not reset them.
public final class LoginGate: @unchecked Sendable {
    typealias Decided = @Sendable (LoginThrottle.Decision) -> Void

    /// Attempts waiting for pending ones at most; past it a new attempt
    /// that would wait is refused as `busy` (its decision: `limited` is a
    /// lie, so `proceed` is never given either: see `begin`).
    let maximumWaiters: Int

    private struct Waiter {
        let account: String
        let client: String
        let decided: Decided
    }

    private let lock = ServiceLock()
    private var throttle: LoginThrottle
    private var waiters: [Waiter] = []
    /// A wake-up is running: others ask it to go round again instead of
    /// recursing (a woken attempt that is refused finishes, which wakes...).
    private var waking = false
    private var wakeAgain = false
    private let store: any CredentialStore
    private let log: any OperationsLog
    private let clock: @Sendable () -> Int64

    /// Starts from the counters the store holds (a restart keeps its limits).
    public init(
        limits: LoginThrottle.Limits, maximumWaiters: Int, store: any CredentialStore, log: any OperationsLog,
        clock: @escaping @Sendable () -> Int64
    ) throws(StoreError) {
        self.maximumWaiters = maximumWaiters
        self.throttle = LoginThrottle(limits: limits, counters: try store.loadFailureCounters())
        self.store = store
        self.log = log
        self.clock = clock
    }

    public func updateLimits(_ limits: LoginThrottle.Limits) {
        lock.withLock { throttle.limits = limits }
    }

    /// Calls `decided` with `.proceed` or `.limited`, now or once pending
    /// attempts on the same keys have finished; returns false (and never
    /// calls it) when the attempt would have to wait and too many already do.
    func begin(account: String, client: String, decided: @escaping Decided) -> Bool {
        let decision = lock.withLock { () -> LoginThrottle.Decision? in
            let decision = throttle.begin(account: account, client: client, now: clock())
            if decision == .wait {
                guard waiters.count < maximumWaiters else { return nil }
                waiters.append(Waiter(account: account, client: client, decided: decided))
            }
            return decision
        }
        guard let decision else { return false }
        if decision != .wait { decided(decision) }
        return true
    }

    /// Ends an attempt, persists the counters it changed, then lets waiting
    /// attempts decide again. A failed write is logged: the limit still
    /// holds in memory, only a restart would forget it.
    func finish(account: String, client: String, outcome: LoginThrottle.Outcome) {
        let changes = lock.withLock {
            throttle.finish(account: account, client: client, outcome: outcome, now: clock())
        }
        guard !changes.isEmpty else {
            wakeWaiters()
            return
        }
        let keys = changes.map(\.key)
        store.saveFailureCounters(
            { [self] in lock.withLock { keys.map { LoginThrottle.Change(key: $0, counter: throttle.counters[$0]) } } }
        ) { [self] result in
            if case .failure(let error) = result {
                log.log(.error, "could not persist failure counters", metadata: ["cause": "\(error)"])
            }
            wakeWaiters()
        }
    }

    /// See `LoginThrottle.isFirstRefusal`.
    func isFirstRefusal(account: String, client: String) -> Bool {
        let now = clock()
        return lock.withLock { throttle.isFirstRefusal(account: account, client: client, now: now) }
    }

    public func pruneExpired() {
        _ = lock.withLock { throttle.pruneExpired(now: clock()) }
    }

    /// Lets waiting attempts decide again, in a loop: a woken attempt may
    /// finish at once (its job refused), which asks for another round here
    /// rather than a nested one, so the stack stays flat however many wait.
    private func wakeWaiters() {
        let proceed = lock.withLock { () -> Bool in
            if waking {
                wakeAgain = true
                return false
            }
            waking = true
            return true
        }
        guard proceed else { return }
        while true {
            let ready = lock.withLock { () -> [(Decided, LoginThrottle.Decision)] in
                wakeAgain = false
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
            let again = lock.withLock { () -> Bool in
                if wakeAgain { return true }
                waking = false
                return false
            }
            if !again { return }
        }
    }
}
