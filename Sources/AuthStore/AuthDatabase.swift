import AuthCore
import GRDB

/// The SQLite store (WAL mode), and the owner of the in-memory `LiveView`.
/// Each public method is one transaction that keeps the invariants; the
/// schema's constraints (UNIQUE, NOT NULL, foreign keys with cascades)
/// back them up.
public final class AuthDatabase: Sendable {
    let pool: DatabasePool
    public let view = LiveView()

    public init(path: String) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(5)
        // Reads are rare (verification uses the in-memory view): two readers.
        configuration.maximumReaderCount = 2
        configuration.prepareDatabase { db in
            // An answered write must survive kill -9: with WAL, NORMAL syncs
            // at checkpoints, and a committed transaction is in the WAL file
            // (in the OS page cache) before `write` returns.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // 1 MiB of page cache per connection (the default is 2 MiB).
            try db.execute(sql: "PRAGMA cache_size = -1024")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        try AuthDatabase.migrator.migrate(pool)
    }

    /// Fills the in-memory view from the database (at start-up), streaming
    /// rows through cursors so no intermediate arrays are built.
    public func loadView(now: Int64) throws {
        try pool.read { db in
            let userCount = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users") ?? 0
            let sessionCount =
                try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > ?",
                    arguments: [now]) ?? 0
            try view.load(userCount: userCount, sessionCount: sessionCount) { addUser, addSession in
                let users = try Row.fetchCursor(db, sql: "SELECT id, email, role, active, created_at FROM users")
                while let row = try users.next() {
                    addUser(
                        UserSnapshot(
                            id: row[0], email: row[1], role: row[2], active: row[3], createdAt: row[4]))
                }
                let sessions = try Row.fetchCursor(
                    db,
                    sql: "SELECT id, user_id, expires_at FROM sessions WHERE revoked_at IS NULL AND expires_at > ?",
                    arguments: [now])
                while let row = try sessions.next() {
                    addSession(row[0], SessionSnapshot(userID: row[1], expiresAt: row[2]))
                }
            }
        }
    }

    /// Runs `body` in one write transaction and applies the view changes it
    /// collected after the commit, before the writer is released.
    func write<T>(_ body: (Database, inout [LiveView.Change]) throws -> T) throws -> T {
        try pool.writeWithoutTransaction { db in
            var changes: [LiveView.Change] = []
            var result: T?
            try db.inTransaction(.immediate) {
                changes.removeAll()
                result = try body(db, &changes)
                return .commit
            }
            view.apply(changes)
            return result!
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try pool.read(body)
    }

    /// Closes the connections (on shutdown): statements are finalised and
    /// the WAL is checkpointed.
    public func close() throws {
        try pool.close()
    }

    /// `PRAGMA integrity_check`: "ok" for a sound file.
    public func integrityCheck() throws -> String {
        try pool.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "" }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE users (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        email TEXT NOT NULL UNIQUE,
                        password_hash TEXT NOT NULL,
                        role TEXT NOT NULL,
                        active INTEGER NOT NULL CHECK (active IN (0, 1)),
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL
                    );
                    CREATE TABLE sessions (
                        id TEXT PRIMARY KEY NOT NULL,
                        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        created_at INTEGER NOT NULL,
                        last_used_at INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL,
                        revoked_at INTEGER,
                        revoke_reason TEXT
                    );
                    CREATE INDEX sessions_user ON sessions(user_id);
                    CREATE INDEX sessions_expiry ON sessions(expires_at);
                    CREATE TABLE refresh_tokens (
                        token_hash BLOB PRIMARY KEY NOT NULL,
                        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                        issued_at INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL,
                        spent_at INTEGER
                    );
                    CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);
                    CREATE TABLE login_failures (
                        key TEXT PRIMARY KEY NOT NULL,
                        failures INTEGER NOT NULL,
                        window_start INTEGER NOT NULL
                    );
                    """)
        }
        return migrator
    }
}
