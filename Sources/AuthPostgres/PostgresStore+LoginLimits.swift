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
                try await Self.countExpiredAttempts(
                    of: [account, client], window: limits.window, now: now, connection, logger: logger)
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
                    // The server's clock decides expiry: hosts' clocks may
                    // differ. One instant (the transaction's) for both rows,
                    // so an attempt's two places expire together.
                    try await connection.query(
                        """
                        INSERT INTO login_attempts (id, key, expires_at)
                        SELECT \(id), k, extract(epoch FROM now())::bigint + \(holdFor)
                        FROM unnest(\([account, client])::text[]) AS k
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
                try await Self.countExpiredAttempts(
                    of: [account, client], window: limits.window, now: now, connection, logger: logger)
                var held = false
                for try await _ in try await connection.query(
                    "DELETE FROM login_attempts WHERE id = \(reservation) RETURNING 1", logger: logger
                ).decode(Int.self) {
                    held = true
                }
                switch outcome {
                case .abandoned: break
                case .succeeded:
                    try await connection.query("DELETE FROM login_failures WHERE key = \(account)", logger: logger)
                case .failed:
                    // Counted once: a place that expired meanwhile was
                    // counted as a failure when it expired.
                    if held {
                        try await Self.addFailures(
                            [account, client], window: limits.window, now: now, connection, logger: logger)
                    }
                }
                return try await Self.counters(of: [account, client], connection, logger: logger)
            }
        }
    }

    /// Both keys' advisory locks, in the order of the lock keys themselves
    /// (no deadlock between two attempts naming the same keys, or keys
    /// whose hashes collide, the other way round).
    private static func lockCounters(of keys: [String], _ connection: PostgresConnection, logger: Logger)
        async throws
    {
        try await connection.query(
            """
            SELECT pg_advisory_xact_lock(\(PostgresSchema.loginLockSpace), h)
            FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(\(keys)::text[]) AS k ORDER BY h) AS locks
            """, logger: logger)
    }

    /// One failure more on each key (per row of `keys`); a window that has
    /// ended starts again with it.
    static func addFailures(
        _ keys: [String], window: Int64, now: Int64, _ connection: PostgresConnection, logger: Logger
    ) async throws {
        guard !keys.isEmpty else { return }
        try await connection.query(
            """
            INSERT INTO login_failures AS f (key, failures, window_start)
            SELECT k, count(*)::int, \(now) FROM unnest(\(keys)::text[]) AS k GROUP BY k
            ON CONFLICT (key) DO UPDATE SET
                failures = CASE WHEN f.window_start + \(window) <= \(now) THEN excluded.failures
                    ELSE f.failures + excluded.failures END,
                window_start = CASE WHEN f.window_start + \(window) <= \(now) THEN \(now) ELSE f.window_start END
            """, logger: logger)
    }

    /// Places whose attempt never ended (its daemon died, or it waited
    /// longer than the place lasts) end as failures: an attempt is counted
    /// either as pending or as a failure, never as neither. With `keys`
    /// nil, every key's (the sweeper).
    static func countExpiredAttempts(
        of keys: [String]?, window: Int64, now: Int64, _ connection: PostgresConnection, logger: Logger
    ) async throws {
        var expired: [String] = []
        let rows =
            if let keys {
                try await connection.query(
                    """
                    DELETE FROM login_attempts WHERE key = ANY(\(keys))
                        AND expires_at <= extract(epoch FROM now())::bigint RETURNING key
                    """, logger: logger)
            } else {
                try await connection.query(
                    """
                    DELETE FROM login_attempts WHERE expires_at <= extract(epoch FROM now())::bigint
                    RETURNING key
                    """, logger: logger)
            }
        for try await key in rows.decode(String.self) { expired.append(key) }
        try await addFailures(expired, window: window, now: now, connection, logger: logger)
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
