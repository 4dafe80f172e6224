import AuthCore
import Foundation
import Testing

/// `authd migrate --from-sqlite`: a real single-host state directory copied
/// into an empty PostgreSQL database, then served by two daemons on it.
@Suite(.enabled(if: PostgresDatabases.isAvailable), .timeLimit(.minutes(5)))
struct MovingInTests {
    func migrate(_ stateDirectory: String, into database: String) throws -> (Int32, String) {
        try DaemonProcess.runToExit(
            arguments: ["migrate", "--from-sqlite", stateDirectory, "--database-url", database])
    }

    /// Second factors move too: sealed under the state directory's
    /// generated key, resealed under the shared one, and asked for on
    /// PostgreSQL, with the same recovery codes and the last accepted step.
    @Test func secondFactorsMoveWithTheirUsers() throws {
        let single = try DaemonProcess.started()
        defer { single.tearDown() }
        let rpc = try single.connect()
        try rpc.createUser("two@example.com")
        try rpc.createUser("one@example.com")
        let enrolled = try SecondFactorTests.enrol(rpc, try rpc.login("two@example.com"))
        _ = single.stop()
        let database = try PostgresDatabases.create()
        let (status, output) = try migrate(single.stateDirectory, into: database)
        #expect(status == 0 && output.contains("copied 2 users (1 with a second factor)"), "\(output)")
        try withDaemon(flags: ["database-url": database]) { _, shared in
            #expect(try shared.login("one@example.com").access.isEmpty == false)
            let token = try SecondFactorTests.firstStep(shared, "two@example.com")
            // The confirmation's code was spent before the move: still spent.
            let spent = enrolled.totp.code(step: enrolled.confirmedStep)
            #expect(try SecondFactorTests.secondStep(shared, token, spent).errorReason == "invalid_credentials")
            #expect(try SecondFactorTests.secondStep(shared, token, enrolled.nextCode)["result"] != nil)
            let again = try SecondFactorTests.firstStep(shared, "two@example.com")
            #expect(
                try SecondFactorTests.secondStep(shared, again, enrolled.recoveryCodes[0])["result"] != nil)
        }
    }

    @Test func aSingleHostDeploymentMovesOntoPostgreSQLWithoutLoggingAnyoneOut() throws {
        // The single host: generated keys, one rotation, two users, live and
        // ended sessions, a failure counter.
        let single = try DaemonProcess.started(flags: ["login-max-failures": "3"])
        defer { single.tearDown() }
        let rpc = try single.connect()
        let aliceID = try rpc.createUser("alice@example.com", role: "editor")
        try rpc.createUser("bob@example.com")
        let underFirstKey = try rpc.login("alice@example.com")
        _ = try rpc.result("keys.rotate", [:])
        let alice = try rpc.login("alice@example.com")
        let ended = try rpc.login("bob@example.com")
        _ = try rpc.result("auth.logout", ["refresh_token": .string(ended.refresh)])
        let bob = try rpc.login("bob@example.com")
        // The newest user is gone: its id is not handed out again.
        let daveID = try rpc.createUser("dave@example.com")
        _ = try rpc.result("user.delete", ["id": .string(daveID)])
        for _ in 0..<2 {
            let wrong = try rpc.call(
                "auth.login", ["email": .string("bob@example.com"), "password": .string("not the password")])
            #expect(wrong.errorReason == "invalid_credentials")
        }
        let stateDirectory = single.stateDirectory
        // A running daemon holds its state directory: the copy waits for it.
        let database = try PostgresDatabases.create()
        let (busy, busyOutput) = try migrate(stateDirectory, into: database)
        #expect(busy != 0 && busyOutput.contains("stop the authd"))
        _ = single.stop()

        let (status, output) = try migrate(stateDirectory, into: database)
        #expect(status == 0, "\(output)")
        #expect(output.contains("copied 2 users (0 with a second factor), 3 live sessions, "), "\(output)")
        #expect(output.contains(" and 3 signing keys into "), "\(output)")
        // Only once: the database is in use now.
        let (again, againOutput) = try migrate(stateDirectory, into: database)
        #expect(again != 0 && againOutput.contains("not empty"))
        // The single host does not come back beside the new ones.
        do {
            try single.start()
            Issue.record("the moved single host started again")
        } catch {
            #expect(single.stderr.contains("this state directory was moved into"), "\(single.stderr)")
        }
        // Client counters are named as a shared store names them.
        let keys = try PostgresDatabases.query(
            "SELECT key FROM login_failures ORDER BY key", url: try DatabaseURL.parse(database))
        #expect(
            keys.split(separator: "\n").allSatisfy { $0.hasPrefix("account:") || $0.hasPrefix("client:host:") },
            "\(keys)")
        #expect(keys.contains("client:host:"), "\(keys)")

        let a = try DaemonProcess.started(flags: ["database-url": database, "login-max-failures": "3"])
        defer { a.tearDown() }
        let b = try DaemonProcess.started(flags: ["database-url": database, "login-max-failures": "3"])
        defer { b.tearDown() }
        let onA = try a.connect()
        let onB = try b.connect()
        // Tokens issued on the single host verify on both (under both keys),
        // with their user's id and role; a logged-out session stays out.
        for rpc in [onA, onB] {
            let verified = try rpc.verify(alice.access)
            let claims = verified["result"]?.objectValue?["claims"]?.objectValue
            #expect(claims?.string("sub") == aliceID && claims?.string("role") == "editor", "\(verified)")
            #expect(try rpc.verify(underFirstKey.access)["result"] != nil)
            #expect(try rpc.verify(ended.access).errorReason == "session_revoked")
        }
        // Its refresh token rotates on B, and presenting it again is reuse.
        let refreshed = try onB.result("auth.refresh", ["refresh_token": .string(bob.refresh)])
        #expect(refreshed.string("access_token") != nil)
        #expect(try onA.call("auth.refresh", ["refresh_token": .string(bob.refresh)]).errorReason == "refresh_reused")
        // Hashes moved: passwords log in; the failure count carried over
        // (two of three used: one more failure locks).
        #expect(try onA.login("alice@example.com").userID == aliceID)
        let third = try onB.call(
            "auth.login", ["email": .string("bob@example.com"), "password": .string("not the password")])
        #expect(third.errorReason == "invalid_credentials")
        #expect(
            try onA.call("auth.login", ["email": .string("bob@example.com"), "password": .string(defaultPassword)])
                .errorReason == "rate_limited")
        // New users are numbered after the copied ones; new tokens use the
        // rotated key, current on the single host.
        let carol = try onA.createUser("carol@example.com")
        #expect(Int(carol) ?? 0 > Int(daveID) ?? 0)
        #expect(try kid(of: onB.login("carol@example.com").access) == kid(of: alice.access))
        guard case .array(let users)? = try onB.result("user.list", [:])["users"] else {
            Issue.record("user.list gave no users")
            return
        }
        #expect(users.count == 3)
    }
}
