import AuthCore
import AuthServiceCore
import Logging
import PostgresNIO

extension PostgresStore {
    public struct SweepResult: Sendable, Equatable {
        public var sessions = 0
        public var failureCounters = 0
        public var feedRows = 0
    }

    /// Deletes expired sessions (in batches, each a transaction; found
    /// through the index of the hour they expire in, schema 3), failure
    /// counters whose window ended, and change rows older than
    /// `feedRetention` seconds. One daemon sweeps at a time: nil when
    /// another holds the sweep lock (transaction-level, so a daemon that
    /// dies mid-sweep holds nothing).
    public func sweep(now: Int64, loginWindow: Int64, feedRetention: Int64 = 3_600, batchSize: Int = 1_000)
        async throws -> SweepResult?
    {
        var result = SweepResult()
        while true {
            let deleted: Int? = try await write { [self] connection, notes in
                guard try await Self.takeSweepLock(connection, logger: logger) else { return nil }
                var count = 0
                for try await (id, userID) in try await connection.query(
                    """
                    DELETE FROM sessions WHERE id IN (
                        SELECT id FROM sessions WHERE expiry_hour <= \(now / 3_600) AND expires_at <= \(now)
                        LIMIT \(batchSize) FOR UPDATE SKIP LOCKED)
                    RETURNING id, user_id
                    """, logger: logger
                ).decode((String, Int64).self) {
                    notes.session(id, user: userID)
                    count += 1
                }
                return count
            }
            guard let deleted else { return nil }
            result.sessions += deleted
            if deleted < batchSize { break }
        }
        let rest: (Int, Int)? = try await write { [self] connection, _ in
            guard try await Self.takeSweepLock(connection, logger: logger) else { return nil }
            var counters = 0
            for try await _ in try await connection.query(
                "DELETE FROM login_failures WHERE window_start + \(loginWindow) <= \(now) RETURNING 1", logger: logger
            ).decode(Int.self) {
                counters += 1
            }
            try await connection.query("DELETE FROM mfa_challenges WHERE expires_at <= \(now)", logger: logger)
            // Places held by attempts whose daemon never ended them: failures.
            try await Self.countExpiredAttempts(window: loginWindow, now: now, connection, logger: logger)
            // Rows are created in position order (clock_timestamp under the
            // feed lock), so everything up to the newest old row is old.
            var pruned: Int64 = 0
            var rows = 0
            for try await position in try await connection.query(
                """
                DELETE FROM authd_changes WHERE position <= (
                    SELECT max(position) FROM authd_changes
                    WHERE created_at < clock_timestamp() - make_interval(secs => \(Double(feedRetention))))
                RETURNING position
                """, logger: logger
            ).decode(Int64.self) {
                pruned = max(pruned, position)
                rows += 1
            }
            if pruned > 0 {
                try await connection.query(
                    "UPDATE authd_feed SET pruned_through = greatest(pruned_through, \(pruned))", logger: logger)
            }
            return (counters, rows)
        }
        guard let rest else { return nil }
        result.failureCounters = rest.0
        result.feedRows = rest.1
        return result
    }

    /// The sweep's own transaction-level lock, without waiting.
    private static func takeSweepLock(_ connection: PostgresConnection, logger: Logger) async throws -> Bool {
        var taken = false
        for try await got in try await connection.query(
            "SELECT pg_try_advisory_xact_lock(\(PostgresSchema.sweepLock))", logger: logger
        ).decode(Bool.self) {
            taken = got
        }
        return taken
    }
}
