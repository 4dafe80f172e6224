import AuthCore
import AuthServiceCore
import Logging
import PostgresNIO

/// Failed-login limits that hold across every daemon on the database: the
/// counters live in `login_failures`, and each attempt a daemon admits
/// holds a row in `login_attempts` (with an expiry) while its hash runs.
/// Both keys of an attempt are locked (transaction-level advisory locks,
/// in one order) while it is decided or ended, so two daemons deciding on
/// one account at once are serialised, and the rule is the one a single
/// daemon applies (`LoginThrottle.decision`).
extension PostgresStore {
    public var sharesLoginLimits: Bool { true }

    public func reserveLoginAttempt(
        account: String, client: String, limits: LoginThrottle.Limits, now: Int64, holdFor: Int64,
        _ done: @escaping StoreCompletion<LoginReservation>
    ) {
        complete(done) { [self] in
            try await write { [self] connection, _ in
                try await Self.lockCounters(of: [account, client], connection, logger: logger)
                try await connection.query(
                    "DELETE FROM login_attempts WHERE key IN (\(account), \(client)) AND expires_at <= \(now)",
                    logger: logger)
                let counters = try await Self.counters(of: [account, client], connection, logger: logger)
                var pending: [String: Int] = [:]
                for try await (key, count) in try await connection.query(
                    "SELECT key, count(*)::int FROM login_attempts WHERE key IN (\(account), \(client)) GROUP BY key",
                    logger: logger
                ).decode((String, Int).self) {
                    pending[key] = count
                }
                let throttle = LoginThrottle(limits: limits, counters: counters)
                switch throttle.decision(
                    account: account, client: client, pendingOnAccount: pending[account, default: 0],
                    pendingOnClient: pending[client, default: 0], now: now)
                {
                case .limited(let retryAfter): return .limited(retryAfter: retryAfter, counters: counters)
                case .wait: return .wait(counters: counters)
                case .proceed:
                    var id: Int64 = 0
                    for try await next in try await connection.query(
                        "SELECT nextval('login_attempt_ids')", logger: logger
                    ).decode(Int64.self) {
                        id = next
                    }
                    let expiresAt = now + holdFor
                    try await connection.query(
                        """
                        INSERT INTO login_attempts (id, key, expires_at)
                        VALUES (\(id), \(account), \(expiresAt)), (\(id), \(client), \(expiresAt))
                        """, logger: logger)
                    return .reserved(id: id, counters: counters)
                }
            }
        }
    }

    public func finishLoginAttempt(
        _ reservation: Int64, account: String, client: String, outcome: LoginThrottle.Outcome,
        limits: LoginThrottle.Limits, now: Int64, _ done: @escaping StoreCompletion<[String: LoginThrottle.Counter]>
    ) {
        complete(done) { [self] in
            try await write { [self] connection, _ in
                try await Self.lockCounters(of: [account, client], connection, logger: logger)
                try await connection.query("DELETE FROM login_attempts WHERE id = \(reservation)", logger: logger)
                switch outcome {
                case .abandoned: break
                case .succeeded:
                    try await connection.query("DELETE FROM login_failures WHERE key = \(account)", logger: logger)
                case .failed:
                    // A window that has ended starts again with this failure.
                    try await connection.query(
                        """
                        INSERT INTO login_failures AS f (key, failures, window_start)
                        SELECT k, 1, \(now) FROM unnest(\([account, client])::text[]) AS k
                        ON CONFLICT (key) DO UPDATE SET
                            failures = CASE WHEN f.window_start + \(limits.window) <= \(now) THEN 1
                                ELSE f.failures + 1 END,
                            window_start = CASE WHEN f.window_start + \(limits.window) <= \(now) THEN \(now)
                                ELSE f.window_start END
                        """, logger: logger)
                }
                return try await Self.counters(of: [account, client], connection, logger: logger)
            }
        }
    }

    /// Both keys' advisory locks, in one order (no deadlock between two
    /// attempts naming the same keys the other way round).
    private static func lockCounters(of keys: [String], _ connection: PostgresConnection, logger: Logger)
        async throws
    {
        for key in Set(keys).sorted() {
            try await connection.query(
                "SELECT pg_advisory_xact_lock(\(PostgresSchema.loginLockSpace), hashtext(\(key)))", logger: logger)
        }
    }

    private static func counters(of keys: [String], _ connection: PostgresConnection, logger: Logger) async throws
        -> [String: LoginThrottle.Counter]
    {
        var counters: [String: LoginThrottle.Counter] = [:]
        for try await (key, failures, windowStart) in try await connection.query(
            "SELECT key, failures, window_start FROM login_failures WHERE key = ANY(\(keys))", logger: logger
        ).decode((String, Int, Int64).self) {
            counters[key] = LoginThrottle.Counter(failures: failures, windowStart: windowStart)
        }
        return counters
    }
}
