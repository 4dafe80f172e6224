import AuthCore
import Dispatch

/// The shared `LoginThrottle` behind a lock, with the attempts that must
/// wait for pending ones, and write-through of counters to the store so a
/// restart does not reset them. On a store several daemons share, an
/// attempt the local throttle admits also reserves its place in the
/// store's counters, which hold every daemon's failures and pending
/// attempts: five failures spread over hosts lock the account on all.
public final class LoginGate: @unchecked Sendable {
    /// What an attempt may do.
    enum Admission: Sendable, Equatable {
        /// Go on; end the attempt with `finish`.
        case proceed(LoginAttempt)
        case limited(retryAfter: Int)
        /// Too many attempts already wait.
        case busy
        /// The shared counters cannot be reached: no attempt goes unchecked.
        case unavailable
    }

    typealias Decided = @Sendable (Admission) -> Void

    /// How long a reservation in shared counters holds if its daemon never
    /// ends it (it died mid-hash, or the attempt waited that long): then it
    /// counts as a failure, so no attempt goes uncounted.
    static let reservationLifetime: Int64 = 30
    /// How soon an attempt asks again while other daemons' attempts pend
    /// (doubling up to `sharedRetryLongest`), and for how long it does
    /// before it is answered `busy`: by then every place it waited for has
    /// ended or expired.
    static let sharedRetryDelay: Double = 0.05
    static let sharedRetryLongest: Double = 0.8
    static let sharedRetryFor: Double = Double(reservationLifetime) + 5

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
    /// Attempts asking the shared store again later: they count against
    /// `maximumWaiters` like local waiters.
    private var retrying = 0
    private let retries = DispatchQueue(label: "authd.login-gate.retry")

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

    /// Calls `decided` with the attempt's admission, now or once pending
    /// attempts on the same keys have finished; returns false (and never
    /// calls it) when the attempt would have to wait and too many already do.
    func begin(account: String, client: String, decided: @escaping Decided) -> Bool {
        let decision = lock.withLock { () -> LoginThrottle.Decision? in
            let decision = throttle.begin(account: account, client: client, now: clock())
            if decision == .wait {
                guard waiters.count + retrying < maximumWaiters else { return nil }
                waiters.append(Waiter(account: account, client: client, decided: decided))
            }
            return decision
        }
        guard let decision else { return false }
        if decision != .wait { admit(decision, account: account, client: client, decided: decided) }
        return true
    }

    /// Passes on the local decision; on a shared store, a `proceed` first
    /// reserves its place there.
    private func admit(
        _ decision: LoginThrottle.Decision, account: String, client: String, retry: SharedRetry? = nil,
        decided: @escaping Decided
    ) {
        switch decision {
        case .limited(let retryAfter): return decided(.limited(retryAfter: retryAfter))
        case .wait: preconditionFailure("a waiting attempt is not admitted")
        case .proceed: break
        }
        guard store.sharesLoginLimits else {
            return decided(.proceed(LoginAttempt(account: account, client: client, reservation: nil)))
        }
        let limits = lock.withLock { throttle.limits }
        store.reserveLoginAttempt(
            account: account, client: client, limits: limits, now: clock(), holdFor: Self.reservationLifetime
        ) { [self] result in
            switch result {
            case .success(.reserved(let id, let counters)):
                lock.withLock { adopt(counters, account: account, client: client) }
                decided(.proceed(LoginAttempt(account: account, client: client, reservation: id)))
            case .success(.limited(let retryAfter, let counters)):
                release(account: account, client: client, adopting: counters)
                decided(.limited(retryAfter: retryAfter))
            case .success(.wait(let counters)):
                release(account: account, client: client, adopting: counters)
                askAgain(account: account, client: client, after: retry ?? SharedRetry(), decided: decided)
            case .failure(let error):
                log.log(.warning, "could not reserve a login attempt", metadata: ["cause": "\(error)"])
                release(account: account, client: client, adopting: nil)
                decided(.unavailable)
            }
        }
    }

    /// How long an attempt has asked the shared store again, and when next.
    struct SharedRetry: Sendable {
        var started = DispatchTime.now()
        var delay = LoginGate.sharedRetryDelay
    }

    /// Attempts pending on other daemons: asks again after a delay that
    /// doubles, as one more waiter, until they end or expire; past
    /// `sharedRetryFor`, or with too many waiting, `busy`.
    private func askAgain(account: String, client: String, after retry: SharedRetry, decided: @escaping Decided) {
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - retry.started.uptimeNanoseconds) / 1e9
        let queued = lock.withLock { () -> Bool in
            guard elapsed < Self.sharedRetryFor, waiters.count + retrying < maximumWaiters else { return false }
            retrying += 1
            return true
        }
        guard queued else { return decided(.busy) }
        let next = SharedRetry(started: retry.started, delay: min(retry.delay * 2, Self.sharedRetryLongest))
        retries.asyncAfter(deadline: .now() + retry.delay) { [self] in
            let decision = lock.withLock { () -> LoginThrottle.Decision in
                retrying -= 1
                return throttle.begin(account: account, client: client, now: clock())
            }
            if decision == .wait {
                // Waiting on this daemon's own attempts now: ask again later.
                askAgain(account: account, client: client, after: next, decided: decided)
            } else {
                admit(decision, account: account, client: client, retry: next, decided: decided)
            }
        }
    }

    /// Drops the local reservation of an attempt the shared store did not
    /// admit, and lets local waiters decide again.
    private func release(account: String, client: String, adopting counters: [String: LoginThrottle.Counter]?) {
        lock.withLock {
            _ = throttle.finish(account: account, client: client, outcome: .abandoned, now: clock())
            if let counters { adopt(counters, account: account, client: client) }
        }
        wakeWaiters()
    }

    /// The shared store's counters for both keys replace this daemon's
    /// (under `lock`).
    private func adopt(_ counters: [String: LoginThrottle.Counter], account: String, client: String) {
        for key in [account, client] { throttle.adopt(key, counters[key]) }
    }

    /// Ends an attempt, persists the counters it changed, then lets waiting
    /// attempts decide again. A failed write is logged: the limit still
    /// holds in memory, only a restart would forget it (on a shared store,
    /// the reservation left behind counts as a failure when it expires).
    func finish(_ attempt: LoginAttempt, outcome: LoginThrottle.Outcome) {
        let (account, client) = (attempt.account, attempt.client)
        if let reservation = attempt.reservation {
            // The attempt stays pending here until its place in the shared
            // store is given back: an attempt that began meanwhile waits for
            // that here (woken below), instead of finding the place still
            // held there and backing off by timer.
            let limits = lock.withLock { throttle.limits }
            store.finishLoginAttempt(
                reservation, account: account, client: client, outcome: outcome, limits: limits, now: clock()
            ) { [self] result in
                lock.withLock {
                    _ = throttle.finish(account: account, client: client, outcome: outcome, now: clock())
                    if case .success(let counters) = result { adopt(counters, account: account, client: client) }
                }
                if case .failure(let error) = result {
                    log.log(.error, "could not record a login attempt", metadata: ["cause": "\(error)"])
                }
                wakeWaiters()
            }
            return
        }
        let changes = lock.withLock {
            throttle.finish(account: account, client: client, outcome: outcome, now: clock())
        }
        guard !changes.isEmpty, !store.sharesLoginLimits else {
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
            let ready = lock.withLock { () -> [(Waiter, LoginThrottle.Decision)] in
                wakeAgain = false
                guard !waiters.isEmpty else { return [] }
                var ready: [(Waiter, LoginThrottle.Decision)] = []
                var still: [Waiter] = []
                let now = clock()
                for waiter in waiters {
                    let decision = throttle.begin(account: waiter.account, client: waiter.client, now: now)
                    if decision == .wait { still.append(waiter) } else { ready.append((waiter, decision)) }
                }
                waiters = still
                return ready
            }
            for (waiter, decision) in ready {
                admit(decision, account: waiter.account, client: waiter.client, decided: waiter.decided)
            }
            let again = lock.withLock { () -> Bool in
                if wakeAgain { return true }
                waking = false
                return false
            }
            if !again { return }
        }
    }
}
