import AuthCore
import AuthStore
import Foundation
import Testing

/// The store against a real SQLite file in a temporary directory.
@Suite final class AuthDatabaseTests {
    let directory: String
    let database: AuthDatabase

    init() throws {
        directory = NSTemporaryDirectory() + "authd-store-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        database = try AuthDatabase(path: directory + "/authd.sqlite3")
    }

    deinit {
        try? database.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func hash(_ byte: UInt8) -> [UInt8] { [UInt8](repeating: byte, count: 32) }

    @Test func usersAreUniqueByEmailAndMirroredInTheView() throws {
        let user = try database.createUser(
            email: "a@example.com", passwordHash: "$2b$10$x", role: "user", active: true, now: 10)
        #expect(database.view.user(id: user.id)?.email == "a@example.com")
        #expect(throws: StoreError.emailTaken) {
            try database.createUser(email: "a@example.com", passwordHash: "h", role: "user", active: true, now: 11)
        }
        #expect(try database.user(email: "a@example.com")?.passwordHash == "$2b$10$x")
        try database.deleteUser(id: user.id)
        #expect(database.view.user(id: user.id) == nil)
        #expect(throws: StoreError.notFound) { try database.deleteUser(id: user.id) }
    }

    @Test func rotationSpendsTheTokenAndReuseRevokesTheSession() throws {
        let user = try database.createUser(
            email: "r@example.com", passwordHash: "h", role: "user", active: true, now: 0)
        try database.createSession(id: "s1", userID: user.id, refreshHash: hash(1), now: 0, expiresAt: 100)
        #expect(database.view.session(id: "s1")?.expiresAt == 100)
        let rotated = try database.rotateRefreshToken(
            sessionID: "s1", presented: hash(1), next: hash(2), now: 5, expiresAt: 105)
        #expect(rotated == .rotated(user.snapshot))
        #expect(database.view.session(id: "s1")?.expiresAt == 105)
        // Unknown token of a live session: invalid, session untouched.
        #expect(
            try database.rotateRefreshToken(sessionID: "s1", presented: hash(9), next: hash(3), now: 6, expiresAt: 106)
                == .invalid("unknown token"))
        #expect(database.view.session(id: "s1") != nil)
        // The spent one again: reuse, and the whole session goes.
        #expect(
            try database.rotateRefreshToken(sessionID: "s1", presented: hash(1), next: hash(4), now: 7, expiresAt: 107)
                == .reused(userID: user.id))
        #expect(database.view.session(id: "s1") == nil)
        #expect(
            try database.rotateRefreshToken(sessionID: "s1", presented: hash(2), next: hash(5), now: 8, expiresAt: 108)
                == .invalid("session revoked"))
        // Spent tokens are kept until the session's expiry, so reuse stays detectable.
        #expect(try database.rowCounts()["refresh_tokens"] == 2)
    }

    @Test func deactivationRevokesSessionsInTheDatabaseAndTheView() throws {
        let user = try database.createUser(
            email: "d@example.com", passwordHash: "h", role: "user", active: true, now: 0)
        try database.createSession(id: "a", userID: user.id, refreshHash: hash(1), now: 0, expiresAt: 100)
        try database.createSession(id: "b", userID: user.id, refreshHash: hash(2), now: 0, expiresAt: 100)
        _ = try database.updateUser(id: user.id, role: nil, active: false, email: nil, now: 1)
        #expect(database.view.session(id: "a") == nil)
        #expect(database.view.session(id: "b") == nil)
        #expect(database.view.user(id: user.id)?.active == false)
        #expect(try database.liveSessions(userID: user.id, now: 1).isEmpty)
    }

    @Test func passwordChangeKeepsOnlyTheCurrentSession() throws {
        let user = try database.createUser(
            email: "p@example.com", passwordHash: "h", role: "user", active: true, now: 0)
        for (index, id) in ["x", "y", "z"].enumerated() {
            try database.createSession(id: id, userID: user.id, refreshHash: hash(UInt8(index)), now: 0, expiresAt: 100)
        }
        #expect(try database.setPasswordHash(userID: user.id, hash: "h2", keepingSession: "y", now: 1) == 2)
        #expect(database.view.session(id: "y") != nil)
        #expect(database.view.session(id: "x") == nil)
        #expect(try database.liveSessions(userID: user.id, now: 1).map(\.id) == ["y"])
    }

    @Test func theSweeperDeletesExpiredSessionsInBatches() throws {
        let user = try database.createUser(
            email: "s@example.com", passwordHash: "h", role: "user", active: true, now: 0)
        for index in 0..<25 {
            try database.createSession(
                id: "old\(index)", userID: user.id, refreshHash: hash(UInt8(index)), now: 0, expiresAt: 50)
        }
        try database.createSession(id: "live", userID: user.id, refreshHash: hash(200), now: 0, expiresAt: 500)
        try database.saveFailureCounters {
            [
                .init(key: "account:stale", counter: .init(failures: 3, windowStart: 0)),
                .init(key: "account:fresh", counter: .init(failures: 1, windowStart: 95)),
            ]
        }
        let result = try database.sweep(now: 100, loginWindow: 10, batchSize: 10)
        #expect(result.sessions == 25)
        #expect(result.failureCounters == 1)
        #expect(try database.rowCounts()["sessions"] == 1)
        #expect(try database.rowCounts()["refresh_tokens"] == 1)
        #expect(Array(try database.loadFailureCounters().keys) == ["account:fresh"])
        #expect(database.view.session(id: "live") != nil)
    }

    @Test func aReopenedDatabaseRebuildsTheSameView() throws {
        let user = try database.createUser(email: "v@example.com", passwordHash: "h", role: "ops", active: true, now: 3)
        try database.createSession(id: "live", userID: user.id, refreshHash: hash(1), now: 0, expiresAt: 500)
        try database.createSession(id: "gone", userID: user.id, refreshHash: hash(2), now: 0, expiresAt: 500)
        _ = try database.revokeSession(id: "gone", reason: "test", now: 1)
        try database.close()  // as at shutdown (checkpoints the WAL into the file)
        // Reopen a copy: SQLite's POSIX locks are per process and per file, so
        // a second pool on the very same path in this process is not what a
        // restart does (a restart is a new process: the end-to-end tests).
        try FileManager.default.copyItem(
            atPath: directory + "/authd.sqlite3", toPath: directory + "/reopened.sqlite3")
        let reopened = try AuthDatabase(path: directory + "/reopened.sqlite3")
        try reopened.loadView(now: 2)
        #expect(reopened.view.user(id: user.id) == user.snapshot)
        #expect(reopened.view.session(id: "live")?.userID == user.id)
        #expect(reopened.view.session(id: "live")?.expiresAt == 500)
        #expect(reopened.view.session(id: "gone") == nil)
        #expect(try reopened.integrityCheck() == "ok")
    }
}
