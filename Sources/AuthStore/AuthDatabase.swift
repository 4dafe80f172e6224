import AuthCore
import AuthServiceCore
import GRDB
import GRDBSQLite

/// The SQLite store (WAL mode), and the owner of the in-memory `LiveView`.
/// Each public method is one transaction that keeps the invariants; the
/// schema's constraints (UNIQUE, NOT NULL, foreign keys with cascades)
/// back them up.
public final class AuthDatabase: Sendable {
    let pool: any DatabaseWriter
    public let view = LiveView()

    /// The store on any GRDB writer (as GRDB's own `AppDatabase` does): the
    /// daemon's WAL pool on a file, or an in-memory `DatabaseQueue` in tests.
    /// Migrates the schema.
    public init(writer: any DatabaseWriter) throws {
        pool = writer
        // A newer authd's schema (restored from its backup, or an upgrade
        // rolled back) is refused: this version would ignore what it added,
        // such as a second factor, and log users in on a password alone.
        let migrator = AuthDatabase.migrator
        // On the writer: a reader opened before the migration would keep
        // the schema it saw.
        let unknown = try writer.writeWithoutTransaction { db -> [String] in
            guard try migrator.hasBeenSuperseded(db) else { return [] }
            let known = Set(migrator.migrations)
            return try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations").filter { !known.contains($0) }
        }
        if !unknown.isEmpty { throw NewerSchema(unknown: unknown) }
        try migrator.migrate(writer)
    }

    /// The database was migrated by a newer authd.
    public struct NewerSchema: Error, CustomStringConvertible {
        public let unknown: [String]
        public var description: String {
            "the database has a schema this authd does not know (\(unknown.joined(separator: ", "))): it was written by a newer authd; run that version"
        }
    }

    /// The daemon's store: a WAL pool on the SQLite file at `path`.
    public convenience init(path: String) throws {
        try self.init(writer: try DatabasePool(path: path, configuration: AuthDatabase.configuration))
    }

    /// Connection settings for every writer the store uses.
    public static var configuration: Configuration {
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
        return configuration
    }

    /// Fills the in-memory view from the database (at start-up), stepping
    /// SQLite's statements itself: each email and role goes from the row's
    /// bytes into the view's, with no `String` or GRDB row in between (a
    /// million users load in a fraction of the time).
    public func loadView(now: Int64) throws {
        try pool.read { db in
            // Pages mapped, not copied by a read each, for this scan only:
            // mapped pages count as the process's memory while mapped.
            try db.execute(sql: "PRAGMA mmap_size = 4294967296")
            defer { try? db.execute(sql: "PRAGMA mmap_size = 0") }
            let userCount = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users") ?? 0
            // Counted on the partial index (half the time of a count with
            // the expiry): the sessions the sweeper has yet to delete are
            // a few more slots.
            let sessionCount =
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL") ?? 0
            let live = "FROM sessions WHERE revoked_at IS NULL AND expires_at > ?"
            let users = try db.makeStatement(sql: "SELECT id, email, role, active, created_at FROM users")
            let sessions = try db.makeStatement(sql: "SELECT id, user_id, expires_at \(live)")
            try sessions.setArguments([now])
            try view.load(userCount: userCount, sessionCount: sessionCount) { loader in
                try Self.step(users, db) { row in
                    loader.addUser(
                        id: sqlite3_column_int64(row, 0), email: Self.text(row, 1), role: Self.text(row, 2),
                        active: sqlite3_column_int64(row, 3) != 0, createdAt: sqlite3_column_int64(row, 4))
                }
                try Self.step(sessions, db) { row in
                    loader.addSession(
                        id: Self.text(row, 0),
                        SessionSnapshot(userID: sqlite3_column_int64(row, 1), expiresAt: sqlite3_column_int64(row, 2)))
                }
            }
        }
    }

    /// Steps `statement` to its end, calling `row` on each row.
    private static func step(_ statement: Statement, _ db: Database, _ row: (OpaquePointer) throws -> Void) throws {
        let handle = statement.sqliteStatement
        while true {
            switch sqlite3_step(handle) {
            case SQLITE_ROW: try row(handle)
            case SQLITE_DONE: return
            case let code:
                throw DatabaseError(
                    resultCode: ResultCode(rawValue: code),
                    message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                    sql: statement.sql)
            }
        }
    }

    /// A text column's bytes, valid until the row is stepped past.
    private static func text(_ row: OpaquePointer, _ column: Int32) -> UnsafeBufferPointer<UInt8> {
        guard let bytes = sqlite3_column_text(row, column) else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(row, column)))
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

    /// Users whose emails are one address after normalisation (left by the
    /// v2 migration when both spellings existed). Only non-ASCII emails can
    /// collide, so only those are read.
    public func emailCollisions() throws -> [EmailCollision] {
        let rows = try read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT id, email FROM users WHERE length(email) != length(CAST(email AS BLOB)) ORDER BY id")
        }
        var groups: [[UInt8]: [Int64]] = [:]
        var order: [[UInt8]] = []
        for row in rows {
            let email: String = row["email"]
            let key = Array(EmailRule.accountKey(email).utf8)
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(row["id"])
        }
        // A collision with an ASCII-only spelling: look that one up too.
        var collisions: [EmailCollision] = []
        for key in order {
            var ids = groups[key]!
            let normalized = String(decoding: key, as: UTF8.self)
            if let other = try read({ db in
                try Int64.fetchOne(db, sql: "SELECT id FROM users WHERE email = ?", arguments: [normalized])
            }), !ids.contains(other) {
                ids.append(other)
            }
            if ids.count > 1 { collisions.append(EmailCollision(normalized: normalized, userIDs: ids.sorted())) }
        }
        return collisions
    }

    /// Users whose stored email the current rules refuse (rows from before
    /// them, with invisible or bidirectional characters): nobody can log in
    /// as them or find them by email until an operator changes the email.
    public func unusableEmails() throws -> [(id: Int64, email: String)] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT id, email FROM users WHERE length(email) != length(CAST(email AS BLOB)) ORDER BY id")
        }.compactMap { row in
            let email: String = row["email"]
            return EmailRule.normalize(email) == nil ? (row["id"], email) : nil
        }
    }

    /// `PRAGMA integrity_check`: "ok" for a sound file.
    public func integrityCheck() throws -> String {
        try pool.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "" }
    }

    static var migrator: DatabaseMigrator {
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
        migrator.registerMigration("v2") { db in
            // Credential generation (login vs. credential-change races).
            try db.execute(sql: "ALTER TABLE users ADD COLUMN credential_generation INTEGER NOT NULL DEFAULT 0")
            // Only a session's current refresh token is kept: reuse detection
            // needs no history, and spent rows grew without bound.
            try db.execute(sql: "DELETE FROM refresh_tokens WHERE spent_at IS NOT NULL")
            // A user's live sessions (the session cap): revoked rows, which
            // stay until they expire, are not in it, and a refresh (which
            // moves last_used_at) does not touch it.
            try db.execute(sql: "CREATE INDEX sessions_user_live ON sessions(user_id) WHERE revoked_at IS NULL")
            // Emails are NFC now. Rows stored in another spelling are
            // rewritten, unless the NFC spelling is taken: both are then kept
            // and reported at every start until an operator resolves them.
            let rows = try Row.fetchAll(
                db, sql: "SELECT id, email FROM users WHERE length(email) != length(CAST(email AS BLOB))")
            for row in rows {
                let email: String = row["email"]
                guard let normalized = EmailRule.normalize(email), !normalized.utf8.elementsEqual(email.utf8) else {
                    continue
                }
                let taken =
                    try Bool.fetchOne(
                        db, sql: "SELECT 1 FROM users WHERE email = ? AND id != ?",
                        arguments: [normalized, row["id"] as Int64]) ?? false
                if !taken {
                    try db.execute(
                        sql: "UPDATE users SET email = ? WHERE id = ?", arguments: [normalized, row["id"] as Int64])
                }
            }
        }
        migrator.registerMigration("v3") { db in
            // The refresh grace window (`refresh_grace`): per session, the
            // token spent last (its hash), when, until when (the window then
            // in force), how often it was presented again, and its
            // successor's hash and sealed box. Kept for the window only: the
            // daemon deletes what is past it every few seconds.
            try db.execute(
                sql: """
                    CREATE TABLE refresh_grace (
                        session_id TEXT PRIMARY KEY NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                        spent_hash BLOB NOT NULL,
                        next_hash BLOB NOT NULL,
                        spent_at INTEGER NOT NULL,
                        kept_until INTEGER NOT NULL,
                        replays INTEGER NOT NULL DEFAULT 0,
                        sealed_next BLOB NOT NULL
                    );
                    CREATE INDEX refresh_grace_kept ON refresh_grace(kept_until);
                    """)
        }
        migrator.registerMigration("v4") { db in
            // The TOTP second factor: the secret sealed under the
            // key-encryption key, whether confirmed, and the last accepted
            // time step; recovery codes as SHA-256 hashes only; and the
            // challenges a right password leaves for `auth.mfa`, under the
            // hash of their token. `authd_checks` keeps the check value of
            // the key-encryption key things are sealed under.
            try db.execute(
                sql: """
                    ALTER TABLE users ADD COLUMN totp_secret BLOB;
                    ALTER TABLE users ADD COLUMN totp_confirmed INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
                    CREATE TABLE recovery_codes (
                        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        code_hash BLOB NOT NULL,
                        PRIMARY KEY (user_id, code_hash)
                    );
                    CREATE TABLE mfa_challenges (
                        token_hash BLOB PRIMARY KEY NOT NULL,
                        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        credential_generation INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL
                    );
                    CREATE INDEX mfa_challenges_user ON mfa_challenges(user_id);
                    CREATE INDEX mfa_challenges_expiry ON mfa_challenges(expires_at);
                    CREATE TABLE authd_checks (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                    """)
        }
        return migrator
    }
}
