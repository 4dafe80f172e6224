import AuthCore
import AuthServiceCore
import GRDB

extension AuthDatabase {
    // MARK: Login failure counters

    public func storedFailureCounters() throws -> [String: LoginThrottle.Counter] {
        try read { db in
            var counters: [String: LoginThrottle.Counter] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT key, failures, window_start FROM login_failures") {
                counters[row["key"]] = .init(failures: row["failures"], windowStart: row["window_start"])
            }
            return counters
        }
    }

    /// Persists failure counters. `current` runs inside the serialized write
    /// and reads the latest in-memory values, so concurrent saves can never
    /// leave an older value on disk after a newer one.
    public func saveFailureCounters(_ current: () -> [LoginThrottle.Change]) throws {
        try write { db, _ in
            for change in current() {
                if let counter = change.counter {
                    try db.execute(
                        sql: """
                            INSERT INTO login_failures (key, failures, window_start) VALUES (?, ?, ?)
                            ON CONFLICT(key) DO UPDATE SET failures = excluded.failures,
                                window_start = excluded.window_start
                            """, arguments: [change.key, counter.failures, counter.windowStart])
                } else {
                    try db.execute(sql: "DELETE FROM login_failures WHERE key = ?", arguments: [change.key])
                }
            }
        }
    }

    // MARK: Sweeper

    public struct SweepResult: Sendable, Equatable {
        public var sessions = 0
        public var failureCounters = 0
    }

    /// Deletes sessions (and their refresh tokens, by cascade) that expired
    /// before `now`, and failure counters whose window ended, `batchSize`
    /// rows per transaction so the writer is never held for long.
    public func sweep(now: Int64, loginWindow: Int64, batchSize: Int = 1000) throws -> SweepResult {
        var result = SweepResult()
        while true {
            let deleted = try write { db, changes -> Int in
                let ids = try String.fetchAll(
                    db, sql: "SELECT id FROM sessions WHERE expires_at <= ? LIMIT ?", arguments: [now, batchSize])
                guard !ids.isEmpty else { return 0 }
                try db.execute(
                    sql: "DELETE FROM sessions WHERE id IN (SELECT value FROM json_each(?))",
                    arguments: [JSONWriter.encodeString(.array(ids.map(JSONValue.string)))])
                for id in ids { changes.append(.removeSession(id: id)) }
                return db.changesCount
            }
            result.sessions += deleted
            if deleted < batchSize { break }
        }
        _ = try write { db, _ in
            try db.execute(sql: "DELETE FROM mfa_challenges WHERE expires_at <= ?", arguments: [now])
        }
        while true {
            let deleted = try write { db, _ -> Int in
                try db.execute(
                    sql: """
                        DELETE FROM login_failures WHERE key IN
                        (SELECT key FROM login_failures WHERE window_start + ? <= ? LIMIT ?)
                        """, arguments: [loginWindow, now, batchSize])
                return db.changesCount
            }
            result.failureCounters += deleted
            if deleted < batchSize { break }
        }
        return result
    }

    /// Rows in each table, live or not (for stats and tests).
    public func rowCounts() throws -> [String: Int] {
        try read { db in
            var counts: [String: Int] = [:]
            for table in ["users", "sessions", "refresh_tokens", "refresh_grace", "login_failures", "mfa_challenges"] {
                counts[table] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0
            }
            return counts
        }
    }
}
