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
/// daemon applies (`LoginThrottle.decision`). The steps under the locks are
/// the schema's functions (`authd_login_state`, `authd_finish_login`): one
/// round trip each.
extension PostgresStore {
    public var sharesLoginLimits: Bool { true }

    public func reserveLoginAttempt(
        account: String, client: String, limits: LoginThrottle.Limits, now: Int64, holdFor: Int64,
        _ done: @escaping StoreCompletion<LoginReservation>
    ) {
        complete(done) { [self] in
            try await write { [self] connection, _ in
                // The locks taken here are held until this transaction ends:
                // the decision and the place it takes are one step.
                var counters: [String: LoginThrottle.Counter] = [:]
                var pending: [String: Int] = [:]
                for try await (key, failures, windowStart, waiting) in try await connection.query(
                    "SELECT * FROM authd_login_state(\([account, client]), \(limits.window), \(now))", logger: logger
                ).decode((String, Int?, Int64?, Int).self) {
                    if let failures, let windowStart {
                        counters[key] = LoginThrottle.Counter(failures: failures, windowStart: windowStart)
                    }
                    pending[key] = waiting
                }
                let throttle = LoginThrottle(limits: limits, counters: counters)
                switch throttle.decision(
                    account: account, client: client, pendingOnAccount: pending[account, default: 0],
                    pendingOnClient: pending[client, default: 0], now: now)
                {
                case .limited(let retryAfter): return .limited(retryAfter: retryAfter, counters: counters)
                case .wait: return .wait(counters: counters)
                case .proceed:
                    // The server's clock decides expiry: hosts' clocks may
                    // differ. One instant (the transaction's) for both rows,
                    // so an attempt's two places expire together; one id,
                    // drawn once (a materialised CTE is evaluated once).
                    var id: Int64?
                    for try await placed in try await connection.query(
                        """
                        WITH attempt AS MATERIALIZED (SELECT nextval('login_attempt_ids') AS id)
                        INSERT INTO login_attempts (id, key, expires_at)
                        SELECT attempt.id, k, extract(epoch FROM now())::bigint + \(holdFor)
                        FROM attempt, unnest(\([account, client])::text[]) AS k
                        RETURNING id
                        """, logger: logger
                    ).decode(Int64.self) {
                        id = placed
                    }
                    guard let id else { throw StoreError.failed("no login attempt was placed") }
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
            // One statement, its own transaction: the locks it takes last
            // as long as it does. Its commit is not confirmed (see
            // `CommitConfirmation`): one that failed after the rows came
            // back leaves the place held, and it counts as a failure when it
            // expires; the counters adopted meanwhile are the next
            // reservation's to correct.
            try await write(oneStatement: true, changesView: false) { [self] connection, _ in
                var counters: [String: LoginThrottle.Counter] = [:]
                for try await (key, failures, windowStart) in try await connection.query(
                    """
                    SELECT * FROM authd_finish_login(\(reservation), \(account), \(client), \(outcome.storedName),
                        \(limits.window), \(now))
                    """, logger: logger
                ).decode((String, Int, Int64).self) {
                    counters[key] = LoginThrottle.Counter(failures: failures, windowStart: windowStart)
                }
                return counters
            }
        }
    }

    /// Places whose attempt never ended, on every key, end as failures
    /// (the sweeper).
    static func countExpiredAttempts(
        window: Int64, now: Int64, _ connection: PostgresConnection, logger: Logger
    ) async throws {
        try await connection.query("SELECT authd_expire_login_attempts(NULL, \(window), \(now))", logger: logger)
    }
}

extension LoginThrottle.Outcome {
    /// The outcome's name in `authd_finish_login`.
    fileprivate var storedName: String {
        switch self {
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .abandoned: "abandoned"
        }
    }
}
