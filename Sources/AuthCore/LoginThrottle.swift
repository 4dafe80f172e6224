/// Failed-login limits per account and per client over a fixed window, as a
/// pure state machine. An attempt reserves a place before its hash runs, so
/// concurrent attempts can never get past a limit; an attempt that could
/// only go past it if the pending ones all failed waits for them instead of
/// being refused, so concurrent correct logins are never refused by a race.
public struct LoginThrottle: Sendable {
    public struct Limits: Sendable, Equatable {
        public var accountMaxFailures: Int
        public var clientMaxFailures: Int
        public var window: Int64

        public init(accountMaxFailures: Int, clientMaxFailures: Int, window: Int64) {
            self.accountMaxFailures = accountMaxFailures
            self.clientMaxFailures = clientMaxFailures
            self.window = window
        }
    }

    /// Failures counted in the window that began at `windowStart`.
    public struct Counter: Sendable, Equatable {
        public var failures: Int
        public var windowStart: Int64

        public init(failures: Int, windowStart: Int64) {
            self.failures = failures
            self.windowStart = windowStart
        }
    }

    public enum Decision: Sendable, Equatable {
        /// Go on and hash; the attempt holds a reservation until `finish`.
        case proceed
        /// Refuse at once with `429`.
        case limited(retryAfter: Int)
        /// Ask again once a pending attempt on the same keys finishes.
        case wait
    }

    /// A counter that changed and must be persisted (`nil`: delete it).
    public struct Change: Sendable, Equatable {
        public let key: String
        public let counter: Counter?

        public init(key: String, counter: Counter?) {
            self.key = key
            self.counter = counter
        }
    }

    public var limits: Limits
    public private(set) var counters: [String: Counter] = [:]
    private var pending: [String: Int] = [:]
    /// For each locked key, the window whose lock has been reported.
    private var lockReported: [String: Int64] = [:]

    public init(limits: Limits, counters: [String: Counter] = [:]) {
        self.limits = limits
        self.counters = counters
    }

    public static func accountKey(_ normalizedEmail: String) -> String { "account:" + normalizedEmail }
    /// The client key of an attempt. Without a reported `client` it is the
    /// peer's uid; a reported one is scoped to the peer that reported it, in
    /// a space the derived keys never use, so a peer can only exhaust its
    /// own clients' budgets (`"client":"uid:0"` from uid 65534 is not root's).
    /// On a store several hosts share, `host` names this one in the key:
    /// uid 1001 on two hosts is two services, and neither can spend the
    /// other's budget, through its uid or through a reported client.
    public static func clientKey(peerUID: UInt32, reported: String?, host: String? = nil) -> String {
        let scope = host.map { "client:host:\($0):" } ?? "client:"
        if let reported { return scope + "peer:\(peerUID):" + reported }
        return scope + "uid:\(peerUID)"
    }

    /// A key of a single-host store as the same counter is named on a shared
    /// one, from `host` (moving a deployment in); account keys stay.
    public static func sharedKey(_ key: String, host: String) -> String {
        guard key.hasPrefix("client:"), !key.hasPrefix("client:host:") else { return key }
        return "client:host:\(host):" + key.dropFirst("client:".count)
    }

    /// The longest `params.client` accepted, in bytes.
    public static let maximumClientBytes = 256

    public mutating func begin(account: String, client: String, now: Int64) -> Decision {
        let decision = decision(
            account: account, client: client, pendingOnAccount: pending[account, default: 0],
            pendingOnClient: pending[client, default: 0], now: now)
        if decision == .proceed {
            pending[account, default: 0] += 1
            pending[client, default: 0] += 1
        }
        return decision
    }

    /// The rule of `begin`, with the pending attempts counted elsewhere: a
    /// store that several daemons share decides with it on its shared
    /// counters and reservations, so one rule holds on every store.
    public func decision(
        account: String, client: String, pendingOnAccount: Int, pendingOnClient: Int, now: Int64
    ) -> Decision {
        let accountFailures = failures(account, now: now)
        let clientFailures = failures(client, now: now)
        var retryAfter = 0
        if accountFailures >= limits.accountMaxFailures { retryAfter = max(retryAfter, remaining(account, now)) }
        if clientFailures >= limits.clientMaxFailures { retryAfter = max(retryAfter, remaining(client, now)) }
        if retryAfter > 0 { return .limited(retryAfter: retryAfter) }
        if accountFailures + pendingOnAccount >= limits.accountMaxFailures
            || clientFailures + pendingOnClient >= limits.clientMaxFailures
        {
            return .wait
        }
        return .proceed
    }

    /// Takes a counter as the shared store holds it (nil: none), in place
    /// of this daemon's.
    public mutating func adopt(_ key: String, _ counter: Counter?) {
        counters[key] = counter
    }

    /// Ends a reserved attempt. A failure counts against both keys; a
    /// success clears the account's count; `counted: false` (the job never
    /// ran) only drops the reservation.
    public mutating func finish(
        account: String, client: String, outcome: Outcome, now: Int64
    ) -> [Change] {
        release(account)
        release(client)
        switch outcome {
        case .abandoned:
            return []
        case .succeeded:
            guard counters.removeValue(forKey: account) != nil else { return [] }
            return [Change(key: account, counter: nil)]
        case .failed:
            return [recordFailure(account, now: now), recordFailure(client, now: now)]
        }
    }

    public enum Outcome: Sendable {
        case succeeded
        case failed
        case abandoned
    }

    /// Drops counters whose window has ended; returns their keys.
    public mutating func pruneExpired(now: Int64) -> [String] {
        let stale = counters.filter { now >= $0.value.windowStart + limits.window }.map(\.key)
        for key in stale {
            counters.removeValue(forKey: key)
            lockReported.removeValue(forKey: key)
        }
        return stale
    }

    /// Whether a refusal on these keys at `now` is the first since the
    /// limiting key locked in its current window: one `authn_login_lock` per
    /// lock, not one per refused attempt (each of which costs the attacker
    /// nothing, so one entry each would let anyone flood the journal).
    public mutating func isFirstRefusal(account: String, client: String, now: Int64) -> Bool {
        var first = false
        for (key, limit) in [(account, limits.accountMaxFailures), (client, limits.clientMaxFailures)]
        where failures(key, now: now) >= limit {
            let windowStart = counters[key]!.windowStart
            if lockReported[key] != windowStart {
                lockReported[key] = windowStart
                first = true
            }
        }
        return first
    }

    public func failures(_ key: String, now: Int64) -> Int {
        guard let counter = counters[key], now < counter.windowStart + limits.window else { return 0 }
        return counter.failures
    }

    private func remaining(_ key: String, _ now: Int64) -> Int {
        guard let counter = counters[key] else { return 1 }
        return Int(max(1, counter.windowStart + limits.window - now))
    }

    private mutating func release(_ key: String) {
        if let count = pending[key] {
            if count <= 1 { pending.removeValue(forKey: key) } else { pending[key] = count - 1 }
        }
    }

    private mutating func recordFailure(_ key: String, now: Int64) -> Change {
        var counter = counters[key] ?? Counter(failures: 0, windowStart: now)
        if now >= counter.windowStart + limits.window { counter = Counter(failures: 0, windowStart: now) }
        counter.failures += 1
        counters[key] = counter
        return Change(key: key, counter: counter)
    }
}
