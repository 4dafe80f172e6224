import AuthCore
import Foundation
import GRDB
import GRDBSQLite

#if canImport(Glibc)
    import Glibc
#endif

extension AuthDatabase {
    public struct SnapshotFailure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Writes a consistent copy of the whole database to `path` while the
    /// daemon keeps serving: `VACUUM INTO` from a reader (no transaction of
    /// ours around it: it takes its own read snapshot), so writers go on and
    /// the copy holds exactly the transactions committed before it began.
    /// The file is created 0600 first (SQLite would create it with the
    /// umask's mode); it must not exist. The copy is checked with
    /// `PRAGMA integrity_check` and written to disk before this returns.
    public func writeSnapshot(to path: String, cancellation: SnapshotCancellation? = nil) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw SnapshotFailure(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        Glibc.close(fd)
        try pool.unsafeRead { db in
            try cancellation?.begin(db.sqliteConnection)
            defer { cancellation?.end() }
            try db.execute(sql: "VACUUM INTO ?", arguments: [path])
        }
        try cancellation?.check()
        try Self.checkIntegrity(ofFileAt: path)
        try Self.syncFile(path)
    }

    /// Stops a snapshot in progress from another thread (the daemon
    /// stopping): `sqlite3_interrupt` on the connection that copies.
    public final class SnapshotCancellation: @unchecked Sendable {
        private let lock = NSLock()
        private var connection: OpaquePointer?
        private var cancelled = false

        public init() {}

        public func cancel() {
            lock.lock()
            defer { lock.unlock() }
            cancelled = true
            if let connection { sqlite3_interrupt(connection) }
        }

        func begin(_ connection: OpaquePointer?) throws {
            lock.lock()
            defer { lock.unlock() }
            guard !cancelled else { throw SnapshotFailure(description: "the snapshot was cancelled") }
            self.connection = connection
        }

        func end() {
            lock.lock()
            defer { lock.unlock() }
            connection = nil
        }

        func check() throws {
            lock.lock()
            defer { lock.unlock() }
            if cancelled { throw SnapshotFailure(description: "the snapshot was cancelled") }
        }
    }

    /// `PRAGMA integrity_check` on the SQLite file at `path`, opened read-only
    /// (a backup is checked before it is trusted, at its writing and before a
    /// restore). Throws with SQLite's first complaint.
    public static func checkIntegrity(ofFileAt path: String) throws {
        var configuration = Configuration()
        configuration.readonly = true
        let copy = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? copy.close() }
        let verdict = try copy.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
        guard verdict == ["ok"] else {
            throw SnapshotFailure(
                description:
                    "the database copy \(path) fails its integrity check: \(verdict.prefix(3).joined(separator: "; "))")
        }
    }

    /// The schema version (the last migration applied) of the SQLite file at
    /// `path`, read-only; nil when it has none of ours.
    public static func schemaVersion(ofFileAt path: String) throws -> String? {
        var configuration = Configuration()
        configuration.readonly = true
        let copy = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? copy.close() }
        return try copy.read { db in
            guard try db.tableExists("grdb_migrations") else { return nil }
            return try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations").max {
                (Int($0.dropFirst()) ?? 0) < (Int($1.dropFirst()) ?? 0)
            }
        }
    }

    /// The migrations recorded in the SQLite file at `path` that this
    /// version does not know (a newer authd's schema); nil when none.
    public static func unknownMigrations(ofFileAt path: String) throws -> [String]? {
        var configuration = Configuration()
        configuration.readonly = true
        let copy = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? copy.close() }
        let known = Set(migrator.migrations)
        let applied = try copy.read { db in
            try db.tableExists("grdb_migrations")
                ? try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") : []
        }
        let unknown = applied.filter { !known.contains($0) }
        return unknown.isEmpty ? nil : unknown
    }

    private static func syncFile(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw SnapshotFailure(description: "cannot open \(path) to sync it") }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw SnapshotFailure(description: "cannot sync \(path) to disk") }
    }
}
