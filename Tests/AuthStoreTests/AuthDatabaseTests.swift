import AuthCore
import AuthCrypto
import AuthServiceCore
import AuthStore
import Foundation
import GRDB
import Testing

/// The store on an in-memory database: the same schema and statements as
/// the daemon's file (which `StoreFileTests` and the end-to-end tests use).
@Suite struct InMemoryStoreTests {
    @Test func theStoreRunsOnAnyWriter() throws {
        let database = try AuthDatabase(writer: DatabaseQueue(configuration: AuthDatabase.configuration))
        let user = try database.createUser(
            email: "mem@example.com", passwordHash: "h", role: "user", active: true, now: 1)
        try database.createSession(
            id: "m1", userID: user.id, refreshHash: [UInt8](repeating: 1, count: 32), now: 1, expiresAt: 100)
        #expect(database.view.session(id: "m1")?.userID == user.id)
        #expect(try database.user(email: "mem@example.com")?.id == user.id)
        #expect(
            try database.rowCounts() == [
                "users": 1, "sessions": 1, "refresh_tokens": 1, "refresh_grace": 0, "login_failures": 0,
                "mfa_challenges": 0,
            ])
    }

    /// Bulk import goes through creation's statements: the view is fed,
    /// and one taken email leaves nothing of the import behind.
    @Test func importIsAllOrNothingAndFeedsTheView() throws {
        let database = try AuthDatabase(writer: DatabaseQueue(configuration: AuthDatabase.configuration))
        let ids = try database.importUsers(emails: ["a@example.com", "b@example.com"], passwordHash: "h", now: 1)
        #expect(ids.count == 2)
        #expect(try database.user(email: "b@example.com")?.id == ids[1])
        try database.importSessions(
            [
                .init(id: "live", userID: ids[0], refreshHash: [UInt8](repeating: 7, count: 32)),
                .init(id: "also", userID: ids[1], refreshHash: [UInt8](repeating: 8, count: 32)),
            ], now: 1, expiresAt: 100)
        #expect(database.view.session(id: "also")?.userID == ids[1])
        #expect(database.view.counts == (users: 2, sessions: 2))
        #expect(throws: StoreError.emailTaken) {
            try database.importUsers(emails: ["c@example.com", "a@example.com"], passwordHash: "h", now: 2)
        }
        #expect(try database.user(email: "c@example.com") == nil)
        #expect(database.view.counts.users == 2)
        // Already-expired sessions are stored (for the sweeper) but never live.
        try database.importSessions(
            [.init(id: "old", userID: ids[0], refreshHash: [UInt8](repeating: 9, count: 32))], now: 50, expiresAt: 10)
        #expect(database.view.session(id: "old") == nil)
        #expect(try database.sessionExists(id: "old"))
    }
}

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
        // Only the current token is kept: the spent row is gone at once.
        #expect(try database.rowCounts()["refresh_tokens"] == 1)
        // A (validly signed) token of this live session that is not its
        // current one, here the spent one: reuse, and the whole session goes.
        #expect(
            try database.rotateRefreshToken(sessionID: "s1", presented: hash(1), next: hash(4), now: 7, expiresAt: 107)
                == .reused(userID: user.id))
        #expect(database.view.session(id: "s1") == nil)
        #expect(
            try database.rotateRefreshToken(sessionID: "s1", presented: hash(2), next: hash(5), now: 8, expiresAt: 108)
                == .invalid("session revoked"))
    }

    @Test func manyRotationsKeepOneRowPerSession() throws {
        let user = try database.createUser(
            email: "loop@example.com", passwordHash: "h", role: "user", active: true, now: 0)
        try database.createSession(id: "s1", userID: user.id, refreshHash: hash(0), now: 0, expiresAt: 100)
        for step in 1...200 {
            let outcome = try database.rotateRefreshToken(
                sessionID: "s1", presented: hash(UInt8(step - 1)), next: hash(UInt8(step % 256)),
                now: Int64(step), expiresAt: Int64(100 + step))
            #expect(outcome == .rotated(user.snapshot))
        }
        #expect(try database.rowCounts()["refresh_tokens"] == 1)
    }

    @Test func aSessionOpensOnlyIfTheCredentialsAreStillTheOnesChecked() throws {
        let user = try database.createUser(
            email: "gen@example.com", passwordHash: "h1", role: "user", active: true, now: 0)
        let checked = try #require(try database.user(id: user.id)).credentialGeneration
        try database.setPasswordHash(userID: user.id, hash: "h2", keepingSession: nil, now: 1)
        #expect(throws: StoreError.credentialsChanged) {
            try database.createSession(
                id: "late", userID: user.id, refreshHash: hash(1), now: 2, expiresAt: 100,
                guard: .init(credentialGeneration: checked, maximumSessions: 100))
        }
        #expect(database.view.session(id: "late") == nil)
        // A cost-raise rehash does not move the generation.
        let current = try #require(try database.user(id: user.id)).credentialGeneration
        try database.upgradePasswordHash(userID: user.id, from: "h2", to: "h2-stronger")
        #expect(try database.user(id: user.id)?.credentialGeneration == current)
        try database.createSession(
            id: "ok", userID: user.id, refreshHash: hash(2), now: 3, expiresAt: 100,
            guard: .init(credentialGeneration: current, maximumSessions: 100))
        // Deactivation moves it too, and reactivation does not bring it back.
        _ = try database.updateUser(id: user.id, role: nil, active: false, email: nil, now: 4)
        _ = try database.updateUser(id: user.id, role: nil, active: true, email: nil, now: 5)
        #expect(throws: StoreError.credentialsChanged) {
            try database.createSession(
                id: "after", userID: user.id, refreshHash: hash(3), now: 6, expiresAt: 100,
                guard: .init(credentialGeneration: current, maximumSessions: 100))
        }
        // A password change that checked an older generation writes nothing.
        #expect(throws: StoreError.credentialsChanged) {
            try database.setPasswordHash(
                userID: user.id, hash: "attacker", keepingSession: nil, expectedGeneration: current, now: 7)
        }
        #expect(try database.user(id: user.id)?.passwordHash == "h2-stronger")
    }

    @Test func theSessionLimitRevokesTheLeastRecentlyUsed() throws {
        let user = try database.createUser(
            email: "many@example.com", passwordHash: "h", role: "user", active: true, now: 0)
        let limit = 3
        for index in 0..<3 {
            try database.createSession(
                id: "s\(index)", userID: user.id, refreshHash: hash(UInt8(index)), now: Int64(index),
                expiresAt: 1000, guard: .init(credentialGeneration: nil, maximumSessions: limit))
        }
        // s0 is used (rotated) last, so s1 is the least recently used.
        _ = try database.rotateRefreshToken(
            sessionID: "s0", presented: hash(0), next: hash(10), now: 5, expiresAt: 1000)
        let evicted = try database.createSession(
            id: "s3", userID: user.id, refreshHash: hash(3), now: 6, expiresAt: 1000,
            guard: .init(credentialGeneration: nil, maximumSessions: limit))
        #expect(evicted == ["s1"])
        #expect(database.view.session(id: "s1") == nil)
        #expect(try database.liveSessions(userID: user.id, now: 6).map(\.id).sorted() == ["s0", "s2", "s3"])
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

    /// The load reads row bytes straight into the view's tables: ids shaped
    /// as the daemon makes them, revoked and expired ones left out.
    @Test func aReopenedDatabaseLoadsDaemonMadeSessionIds() throws {
        let user = try database.createUser(
            email: "d@example.com", passwordHash: "h", role: "user", active: true, now: 3)
        var ids = (0..<300).map { _ in SecureRandom.identifier(byteCount: 11) }
        // One starting with "-" too (the daemon avoids them; the view need not).
        ids[0] = "-" + ids[0].dropFirst()
        for (index, id) in ids.enumerated() {
            try database.createSession(
                id: id, userID: user.id, refreshHash: Digest.sha256(Array(id.utf8)), now: 0,
                expiresAt: index % 3 == 0 ? 1 : 500)
        }
        for id in ids[100..<150] { _ = try database.revokeSession(id: id, reason: "test", now: 1) }
        try database.close()
        try FileManager.default.copyItem(
            atPath: directory + "/authd.sqlite3", toPath: directory + "/reopened.sqlite3")
        let reopened = try AuthDatabase(path: directory + "/reopened.sqlite3")
        try reopened.loadView(now: 2)
        for (index, id) in ids.enumerated() {
            let live = index % 3 != 0 && !(100..<150).contains(index)
            #expect(reopened.view.session(id: id) == (live ? SessionSnapshot(userID: user.id, expiresAt: 500) : nil))
        }
        #expect(reopened.view.user(id: user.id) == user.snapshot)
    }
}
