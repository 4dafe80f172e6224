import AuthCore
import AuthServiceCore
import Foundation
import Testing

/// The contract of `CredentialStore`, written once against the protocol:
/// every store runs it (SQLite and the in-memory fake now; the PostgreSQL
/// store of issue 12 is added to `StoreKind` and runs it unchanged). The
/// live view is checked after every write: token checks trust it.
@Suite struct StoreConformanceTests {
    /// Waits for a store call's one completion.
    static func wait<Value: Sendable>(_ call: (@escaping StoreCompletion<Value>) -> Void) -> Result<
        Value, StoreError
    > {
        let box = Guarded<[Result<Value, StoreError>]>([])
        let done = DispatchSemaphore(value: 0)
        call { result in
            box.withLock { $0.append(result) }
            done.signal()
        }
        if done.wait(timeout: .now() + 30) == .timedOut {
            Issue.record("a store call did not complete within 30 s")
            return .failure(.failed("no completion"))
        }
        let results = box.withLock { $0 }
        #expect(results.count == 1, "a store call completed \(results.count) times")
        return results[0]
    }

    static func value<Value: Sendable>(_ call: (@escaping StoreCompletion<Value>) -> Void) throws -> Value {
        try wait(call).get()
    }

    static let t0: Int64 = 1_800_000_000
    static func hash(_ byte: UInt8) -> [UInt8] { [UInt8](repeating: byte, count: 32) }

    func user(_ store: any CredentialStore, _ email: String, active: Bool = true) throws -> UserRecord {
        try Self.value {
            store.createUser(email: email, passwordHash: "h:\(email)", role: "user", active: active, now: Self.t0, $0)
        }
    }

    func session(
        _ store: any CredentialStore, _ id: String, user: Int64, token: UInt8, now: Int64 = t0,
        guard sessionGuard: SessionGuard = .none
    ) -> Result<[String], StoreError> {
        Self.wait {
            store.createSession(
                id: id, userID: user, refreshHash: Self.hash(token), now: now, expiresAt: now + 1_000,
                guard: sessionGuard, $0)
        }
    }

    @Test(arguments: StoreKind.allCases) func usersAreFoundByIdAndEmailAndEmailsAreUnique(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        let bob = try user(store, "bob@example.com")
        #expect(alice.id != bob.id)
        #expect(try Self.value { store.user(id: alice.id, $0) } == alice)
        #expect(try Self.value { store.user(email: "bob@example.com", $0) }?.id == bob.id)
        #expect(try Self.value { store.user(email: "nobody@example.com", $0) } == nil)
        #expect(try Self.value { store.user(id: 999_999, $0) } == nil)
        let again = Self.wait {
            store.createUser(email: "alice@example.com", passwordHash: "x", role: "user", active: true, now: 1, $0)
        }
        #expect(again == .failure(.emailTaken))
        let renamed = Self.wait {
            store.updateUser(id: bob.id, role: nil, active: nil, email: "alice@example.com", now: 2, $0)
        }
        #expect(renamed == .failure(.emailTaken))
        // Refusals change nothing.
        #expect(try Self.value { store.user(id: bob.id, $0) }?.email == "bob@example.com")
        #expect(store.view.user(id: alice.id) == alice.snapshot)
        #expect(store.view.counts.users == 2)
    }

    @Test(arguments: StoreKind.allCases) func listingPagesByIdInOrder(_ kind: StoreKind) throws {
        let store = try kind.make()
        let ids = try (0..<5).map { try user(store, "u\($0)@example.com").id }
        let first = try Self.value { store.listUsers(after: 0, limit: 2, $0) }
        #expect(first.map(\.id) == Array(ids.prefix(2)))
        let rest = try Self.value { store.listUsers(after: first.last!.id, limit: 10, $0) }
        #expect(rest.map(\.id) == Array(ids.dropFirst(2)))
    }

    @Test(arguments: StoreKind.allCases) func missingUsersAreNotFound(_ kind: StoreKind) throws {
        let store = try kind.make()
        #expect(
            Self.wait { store.updateUser(id: 42, role: "x", active: nil, email: nil, now: 1, $0) }
                == .failure(.notFound))
        #expect(Self.wait { store.deleteUser(id: 42, $0) }.failure == .notFound)
        let reset = Self.wait {
            store.setPasswordHash(userID: 42, hash: "h", keepingSession: nil, expectedGeneration: nil, now: 1, $0)
        }
        #expect(reset == .failure(.notFound))
    }

    @Test(arguments: StoreKind.allCases) func deactivationRevokesEverySessionAndMovesTheGeneration(_ kind: StoreKind)
        throws
    {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        _ = try session(store, "s1", user: alice.id, token: 1).get()
        _ = try session(store, "s2", user: alice.id, token: 2).get()
        #expect(store.view.counts.sessions == 2)
        let updated = try Self.value {
            store.updateUser(id: alice.id, role: "editor", active: false, email: nil, now: Self.t0 + 1, $0)
        }
        #expect(updated.role == "editor")
        #expect(!updated.active)
        #expect(updated.credentialGeneration == alice.credentialGeneration + 1)
        #expect(store.view.user(id: alice.id)?.active == false)
        #expect(store.view.session(id: "s1") == nil)
        #expect(store.view.session(id: "s2") == nil)
        #expect(try Self.value { store.liveSessions(userID: alice.id, now: Self.t0 + 1, $0) }.isEmpty)
        // Reactivating does not bring the sessions back or move it again.
        let back = try Self.value {
            store.updateUser(id: alice.id, role: nil, active: true, email: nil, now: Self.t0 + 2, $0)
        }
        #expect(back.credentialGeneration == updated.credentialGeneration)
        #expect(store.view.counts.sessions == 0)
    }

    @Test(arguments: StoreKind.allCases) func aPasswordChangeIsACompareAndSwapOnTheGeneration(_ kind: StoreKind)
        throws
    {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        for (index, id) in ["keep", "other1", "other2"].enumerated() {
            _ = try session(store, id, user: alice.id, token: UInt8(index + 1)).get()
        }
        let stale = Self.wait {
            store.setPasswordHash(
                userID: alice.id, hash: "new", keepingSession: "keep",
                expectedGeneration: alice.credentialGeneration + 7, now: Self.t0 + 1, $0)
        }
        #expect(stale == .failure(.credentialsChanged))
        #expect(try Self.value { store.user(id: alice.id, $0) }?.passwordHash == alice.passwordHash)
        #expect(store.view.counts.sessions == 3)
        let revoked = try Self.value {
            store.setPasswordHash(
                userID: alice.id, hash: "new", keepingSession: "keep", expectedGeneration: alice.credentialGeneration,
                now: Self.t0 + 1, $0)
        }
        #expect(revoked == 2)
        let after = try Self.value { store.user(id: alice.id, $0) }
        #expect(after?.passwordHash == "new")
        #expect(after?.credentialGeneration == alice.credentialGeneration + 1)
        #expect(store.view.session(id: "keep") != nil)
        #expect(store.view.session(id: "other1") == nil)
        #expect(try Self.value { store.liveSessions(userID: alice.id, now: Self.t0 + 1, $0) }.map(\.id) == ["keep"])
    }

    @Test(arguments: StoreKind.allCases) func aRehashOnlyReplacesTheHashItVerified(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        try Self.value { store.upgradePasswordHash(userID: alice.id, from: "not the hash", to: "x", $0) }
        #expect(try Self.value { store.user(id: alice.id, $0) }?.passwordHash == alice.passwordHash)
        try Self.value { store.upgradePasswordHash(userID: alice.id, from: alice.passwordHash, to: "stronger", $0) }
        let after = try Self.value { store.user(id: alice.id, $0) }
        #expect(after?.passwordHash == "stronger")
        #expect(after?.credentialGeneration == alice.credentialGeneration)
    }

    /// Which schemes stored hashes are in: a prefix match on the whole
    /// hash, never a pattern (`_` and `%` are plain characters here).
    @Test(arguments: StoreKind.allCases) func storedHashesAreFoundByTheirPrefix(_ kind: StoreKind) throws {
        let store = try kind.make()
        let has = { (prefix: String) in try Self.value { store.hasPasswordHash(prefix: prefix, $0) } }
        #expect(try !has("$2"))
        let alice = try Self.value {
            store.createUser(
                email: "alice@example.com", passwordHash: "$2b$12$abc", role: "user", active: true, now: Self.t0, $0)
        }
        #expect(try has("$2"))
        #expect(try has("$2b$12$abc"))
        #expect(try !has("$argon2id$"))
        #expect(try !has("$2b$12$abcd"))
        #expect(try !has("_2"))
        #expect(try !has("%"))
        try Self.value { store.upgradePasswordHash(userID: alice.id, from: "$2b$12$abc", to: "$argon2id$v=19$x", $0) }
        #expect(try has("$argon2id$"))
        #expect(try !has("$2"))
    }

    @Test(arguments: StoreKind.allCases) func aSessionOpensOnlyAtTheGenerationItWasCheckedAt(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        let sleepy = try user(store, "sleepy@example.com", active: false)
        let moved = session(
            store, "s1", user: alice.id, token: 1,
            guard: SessionGuard(credentialGeneration: alice.credentialGeneration + 1, maximumSessions: 10))
        #expect(moved == .failure(.credentialsChanged))
        let inactive = session(
            store, "s2", user: sleepy.id, token: 2,
            guard: SessionGuard(credentialGeneration: sleepy.credentialGeneration, maximumSessions: 10))
        #expect(inactive == .failure(.credentialsChanged))
        #expect(store.view.counts.sessions == 0)
        #expect(!(try Self.value { store.sessionExists(id: "s1", $0) }))
        let opened = session(
            store, "s3", user: alice.id, token: 3,
            guard: SessionGuard(credentialGeneration: alice.credentialGeneration, maximumSessions: 10))
        #expect(opened == .success([]))
        #expect(store.view.session(id: "s3")?.userID == alice.id)
    }

    @Test(arguments: StoreKind.allCases) func theSessionLimitRevokesTheLeastRecentlyUsed(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        let limit = SessionGuard(credentialGeneration: nil, maximumSessions: 2)
        _ = try session(store, "old", user: alice.id, token: 1, now: Self.t0, guard: limit).get()
        _ = try session(store, "mid", user: alice.id, token: 2, now: Self.t0 + 1, guard: limit).get()
        // Using "old" makes "mid" the least recently used.
        let rotated = try Self.value {
            store.rotateRefreshToken(
                sessionID: "old", presented: Self.hash(1), presentedIssuedAt: Self.t0, next: Self.hash(11),
                now: Self.t0 + 2, expiresAt: Self.t0 + 2_000, grace: nil, $0)
        }
        #expect(rotated == .rotated(alice.snapshot))
        let evicted = try session(store, "new", user: alice.id, token: 3, now: Self.t0 + 3, guard: limit).get()
        #expect(evicted == ["mid"])
        #expect(store.view.session(id: "mid") == nil)
        #expect(
            Set(try Self.value { store.liveSessions(userID: alice.id, now: Self.t0 + 3, $0) }.map(\.id)) == [
                "old", "new",
            ])
    }

    /// A limit lowered below the live sessions: every one past it goes at
    /// once, least recently used first; revoked and expired sessions do
    /// not count.
    @Test(arguments: StoreKind.allCases) func aLoweredSessionLimitRevokesEverySessionPastIt(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        for (index, id) in ["a", "b", "c", "d", "e"].enumerated() {
            _ = try session(store, id, user: alice.id, token: UInt8(index), now: Self.t0 + Int64(index)).get()
        }
        // "a" revoked, and "x" expired long ago: neither counts.
        #expect(try Self.value { store.revokeSession(id: "a", reason: "logout", now: Self.t0 + 5, $0) })
        _ = try session(store, "x", user: alice.id, token: 9, now: Self.t0 - 5_000).get()
        let limit = SessionGuard(credentialGeneration: nil, maximumSessions: 2)
        let evicted = try session(store, "new", user: alice.id, token: 6, now: Self.t0 + 6, guard: limit).get()
        #expect(evicted == ["b", "c", "d"])
        #expect(
            Set(try Self.value { store.liveSessions(userID: alice.id, now: Self.t0 + 6, $0) }.map(\.id)) == [
                "e", "new",
            ])
        // At the limit with room: nothing more goes.
        let roomy = SessionGuard(credentialGeneration: nil, maximumSessions: 3)
        #expect(try session(store, "more", user: alice.id, token: 7, now: Self.t0 + 7, guard: roomy).get() == [])
    }

    @Test(arguments: StoreKind.allCases) func rotationSpendsTheCurrentTokenAndReuseRevokes(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        _ = try session(store, "s", user: alice.id, token: 1).get()
        func rotate(_ presented: UInt8, issuedAt: Int64, next: UInt8, now: Int64) throws -> RotationOutcome {
            try Self.value {
                store.rotateRefreshToken(
                    sessionID: "s", presented: Self.hash(presented), presentedIssuedAt: issuedAt, next: Self.hash(next),
                    now: now, expiresAt: now + 1_000, grace: nil, $0)
            }
        }
        #expect(try rotate(1, issuedAt: Self.t0, next: 2, now: Self.t0 + 10) == .rotated(alice.snapshot))
        #expect(store.view.session(id: "s")?.expiresAt == Self.t0 + 1_010)
        // A token signed after the current one was never spent here: invalid, session kept.
        guard case .invalid = try rotate(9, issuedAt: Self.t0 + 50, next: 3, now: Self.t0 + 20) else {
            Issue.record("a newer unknown token must be invalid")
            return
        }
        #expect(store.view.session(id: "s") != nil)
        // The spent first token again: reuse, and the session ends.
        #expect(try rotate(1, issuedAt: Self.t0, next: 4, now: Self.t0 + 30) == .reused(userID: alice.id))
        #expect(store.view.session(id: "s") == nil)
        guard case .invalid = try rotate(2, issuedAt: Self.t0 + 10, next: 5, now: Self.t0 + 40) else {
            Issue.record("a revoked session's current token must be invalid")
            return
        }
    }

    /// The refresh grace window, through the store: a spent token presented
    /// again within the window, while its successor is unused, answers with
    /// the successor's box (three times at most); past any of these it is
    /// reuse as without a window.
    @Test(arguments: StoreKind.allCases) func aTokenSpentWithinTheGraceWindowIsReplayedWithItsSuccessor(
        _ kind: StoreKind
    ) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        let box: [UInt8] = Array(repeating: 0xB0, count: 40)
        func rotate(_ session: String, _ presented: UInt8, next: UInt8, now: Int64, window: Int64 = 10)
            throws -> RotationOutcome
        {
            try Self.value {
                store.rotateRefreshToken(
                    sessionID: session, presented: Self.hash(presented), presentedIssuedAt: nil,
                    next: Self.hash(next), now: now, expiresAt: now + 1_000,
                    grace: window > 0 ? RefreshGrace(window: window, sealedNext: box + [next]) : nil, $0)
            }
        }
        // A lost answer, retried: the same successor, three times, nothing
        // rotated; the fourth presentation is reuse.
        _ = try session(store, "s", user: alice.id, token: 1).get()
        #expect(try rotate("s", 1, next: 2, now: Self.t0 + 10) == .rotated(alice.snapshot))
        for retry in 0..<3 {
            #expect(
                try rotate("s", 1, next: UInt8(20 + retry), now: Self.t0 + 12)
                    == .replayed(alice.snapshot, sealedNext: box + [2], expiresAt: Self.t0 + 1_010))
        }
        #expect(store.view.session(id: "s")?.expiresAt == Self.t0 + 1_010)
        #expect(try rotate("s", 1, next: 30, now: Self.t0 + 13) == .reused(userID: alice.id))
        #expect(store.view.session(id: "s") == nil)

        // The window ends: reuse.
        _ = try session(store, "w", user: alice.id, token: 3).get()
        #expect(try rotate("w", 3, next: 4, now: Self.t0 + 10) == .rotated(alice.snapshot))
        #expect(try rotate("w", 3, next: 5, now: Self.t0 + 20) == .reused(userID: alice.id))

        // The successor has been used: the spent token is never graced.
        _ = try session(store, "u", user: alice.id, token: 6).get()
        #expect(try rotate("u", 6, next: 7, now: Self.t0 + 10) == .rotated(alice.snapshot))
        #expect(try rotate("u", 7, next: 8, now: Self.t0 + 11) == .rotated(alice.snapshot))
        // The successor's successor is the current one's replay...
        #expect(
            try rotate("u", 7, next: 9, now: Self.t0 + 11)
                == .replayed(alice.snapshot, sealedNext: box + [8], expiresAt: Self.t0 + 1_011))
        // ...but the first token's successor is spent: reuse.
        #expect(try rotate("u", 6, next: 10, now: Self.t0 + 12) == .reused(userID: alice.id))

        // A rotation without a window (refresh_grace set to 0 since) ends
        // the grace of the token spent before it.
        _ = try session(store, "z", user: alice.id, token: 11).get()
        #expect(try rotate("z", 11, next: 12, now: Self.t0 + 10) == .rotated(alice.snapshot))
        #expect(try rotate("z", 12, next: 13, now: Self.t0 + 11, window: 0) == .rotated(alice.snapshot))
        #expect(try rotate("z", 11, next: 14, now: Self.t0 + 12) == .reused(userID: alice.id))

        // A password change keeping the session ends its grace: the spent
        // token (perhaps the reason for the change) is reuse.
        _ = try session(store, "p", user: alice.id, token: 18).get()
        #expect(try rotate("p", 18, next: 19, now: Self.t0 + 10) == .rotated(alice.snapshot))
        _ = try Self.value {
            store.setPasswordHash(
                userID: alice.id, hash: "h2", keepingSession: "p", expectedGeneration: nil, now: Self.t0 + 11, $0)
        }
        #expect(store.view.session(id: "p") != nil)
        #expect(try rotate("p", 18, next: 20, now: Self.t0 + 12) == .reused(userID: alice.id))

        // A shorter window now than when it was spent: the shorter holds.
        _ = try session(store, "m", user: alice.id, token: 21).get()
        #expect(try rotate("m", 21, next: 22, now: Self.t0 + 10) == .rotated(alice.snapshot))
        #expect(try rotate("m", 21, next: 23, now: Self.t0 + 12, window: 2) == .reused(userID: alice.id))

        // With the window now 0, a token spent under one is reuse at once.
        _ = try session(store, "n", user: alice.id, token: 15).get()
        #expect(try rotate("n", 15, next: 16, now: Self.t0 + 10) == .rotated(alice.snapshot))
        #expect(try rotate("n", 15, next: 17, now: Self.t0 + 11, window: 0) == .reused(userID: alice.id))
    }

    /// A token graced for a refresh logs its session out without a reuse
    /// alarm; the sweep deletes the kept successors past their window.
    @Test(arguments: StoreKind.allCases) func aGracedTokenLogsOutAndTheSweepDeletesWhatIsPastTheWindow(
        _ kind: StoreKind
    ) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        for (id, token) in [("a", UInt8(1)), ("b", UInt8(3))] {
            _ = try session(store, id, user: alice.id, token: token).get()
            #expect(
                try Self.value {
                    store.rotateRefreshToken(
                        sessionID: id, presented: Self.hash(token), presentedIssuedAt: nil, next: Self.hash(token + 1),
                        now: Self.t0 + 10, expiresAt: Self.t0 + 1_010,
                        grace: RefreshGrace(window: 10, sealedNext: [token]), $0)
                } == .rotated(alice.snapshot))
        }
        #expect(
            try Self.value {
                store.logout(
                    sessionID: "a", presented: Self.hash(1), presentedIssuedAt: nil, graceWindow: 10, now: Self.t0 + 12,
                    $0)
            } == .revoked(userID: alice.id))
        #expect(store.view.session(id: "a") == nil)
        // Not yet past the window: kept.
        #expect(try Self.value { store.sweepRefreshGrace(now: Self.t0 + 19, $0) } == 0)
        #expect(try Self.value { store.sweepRefreshGrace(now: Self.t0 + 20, $0) } >= 1)
        #expect(try Self.value { store.sweepRefreshGrace(now: Self.t0 + 20, $0) } == 0)
        // What was swept is gone: the spent token is reuse, even within a
        // longer window.
        #expect(
            try Self.value {
                store.rotateRefreshToken(
                    sessionID: "b", presented: Self.hash(3), presentedIssuedAt: nil, next: Self.hash(9),
                    now: Self.t0 + 21, expiresAt: Self.t0 + 1_021, grace: RefreshGrace(window: 60, sealedNext: [9]), $0)
            } == .reused(userID: alice.id))
    }

    /// Two refreshes of one token at once under a grace window: one
    /// rotates, the other answers with that rotation's successor.
    @Test(arguments: StoreKind.allCases) func twoRefreshesAtOnceUnderAGraceWindowConvergeOnOneSuccessor(
        _ kind: StoreKind
    ) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        for round in 0..<8 {
            let id = "r\(round)"
            _ = try session(store, id, user: alice.id, token: UInt8(round)).get()
            let outcomes = Guarded<[Int: RotationOutcome]>([:])
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                let next = UInt8(100 + 2 * round + index)
                let outcome = Self.wait {
                    store.rotateRefreshToken(
                        sessionID: id, presented: Self.hash(UInt8(round)), presentedIssuedAt: nil,
                        next: Self.hash(next), now: Self.t0 + 1, expiresAt: Self.t0 + 1_001,
                        grace: RefreshGrace(window: 10, sealedNext: [next]), $0)
                }
                if case .success(let value) = outcome { outcomes.withLock { $0[index] = value } }
            }
            let both = outcomes.withLock { $0 }
            let winner = both.first { $0.value == .rotated(alice.snapshot) }?.key
            #expect(both.count == 2 && winner != nil, "\(both)")
            guard let winner else { continue }
            // The other answers with the box the winner stored.
            #expect(
                both[1 - winner]
                    == .replayed(
                        alice.snapshot, sealedNext: [UInt8(100 + 2 * round + winner)], expiresAt: Self.t0 + 1_001))
            #expect(store.view.session(id: id) != nil)
        }
    }

    @Test(arguments: StoreKind.allCases) func logoutRevokesOnceAndSpentTokensAreReuse(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        _ = try session(store, "a", user: alice.id, token: 1).get()
        _ = try session(store, "b", user: alice.id, token: 2).get()
        func logout(_ id: String, _ presented: UInt8, issuedAt: Int64) throws -> LogoutOutcome {
            try Self.value {
                store.logout(
                    sessionID: id, presented: Self.hash(presented), presentedIssuedAt: issuedAt, graceWindow: 0,
                    now: Self.t0 + 5, $0)
            }
        }
        #expect(try logout("a", 1, issuedAt: Self.t0) == .revoked(userID: alice.id))
        #expect(store.view.session(id: "a") == nil)
        guard case .invalid = try logout("a", 1, issuedAt: Self.t0) else {
            Issue.record("a second logout must be invalid")
            return
        }
        _ = try Self.value {
            store.rotateRefreshToken(
                sessionID: "b", presented: Self.hash(2), presentedIssuedAt: Self.t0, next: Self.hash(3),
                now: Self.t0 + 1,
                expiresAt: Self.t0 + 900, grace: nil, $0)
        }
        #expect(try logout("b", 2, issuedAt: Self.t0) == .reused(userID: alice.id))
        #expect(store.view.counts.sessions == 0)
    }

    @Test(arguments: StoreKind.allCases) func revokingOneOrAllSessions(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        for (index, id) in ["x", "y", "z"].enumerated() {
            _ = try session(store, id, user: alice.id, token: UInt8(index + 1), now: Self.t0 + Int64(index)).get()
        }
        #expect(
            try Self.value { store.liveSessions(userID: alice.id, now: Self.t0 + 5, $0) }.map(\.id) == ["z", "y", "x"])
        #expect(try Self.value { store.revokeSession(id: "x", reason: "test", now: Self.t0 + 5, $0) })
        #expect(!(try Self.value { store.revokeSession(id: "x", reason: "test", now: Self.t0 + 5, $0) }))
        #expect(try Self.value { store.sessionExists(id: "x", $0) })
        #expect(!(try Self.value { store.sessionExists(id: "never", $0) }))
        #expect(
            try Self.value {
                store.revokeSessions(userID: alice.id, keeping: "z", reason: "test", now: Self.t0 + 6, $0)
            } == 1)
        #expect(store.view.session(id: "y") == nil)
        #expect(store.view.session(id: "z") != nil)
        // Expired sessions are not live and not counted.
        #expect(try Self.value { store.liveSessions(userID: alice.id, now: Self.t0 + 5_000, $0) }.isEmpty)
    }

    @Test(arguments: StoreKind.allCases) func deletingAUserEndsItsSessions(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        _ = try session(store, "s", user: alice.id, token: 1).get()
        try Self.value { store.deleteUser(id: alice.id, $0) }
        #expect(store.view.user(id: alice.id) == nil)
        #expect(store.view.session(id: "s") == nil)
        #expect(try Self.value { store.user(email: "alice@example.com", $0) } == nil)
        // The email is free again.
        #expect(try user(store, "alice@example.com").id != alice.id)
    }

    @Test(arguments: StoreKind.allCases) func failureCountersRoundTrip(_ kind: StoreKind) throws {
        let store = try kind.make()
        let counter = LoginThrottle.Counter(failures: 3, windowStart: Self.t0)
        try Self.value {
            store.saveFailureCounters(
                { [.init(key: "account:a", counter: counter), .init(key: "client:uid:7", counter: counter)] }, $0)
        }
        #expect(try store.loadFailureCounters() == ["account:a": counter, "client:uid:7": counter])
        try Self.value { store.saveFailureCounters({ [.init(key: "account:a", counter: nil)] }, $0) }
        #expect(try store.loadFailureCounters() == ["client:uid:7": counter])
    }

    /// Writes racing on many threads: each completes once, and the view ends
    /// where the store ends (no change applied out of commit order).
    @Test(arguments: StoreKind.allCases) func concurrentWritesKeepTheViewInStep(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        DispatchQueue.concurrentPerform(iterations: 64) { index in
            let id = "c\(index)"
            _ = session(store, id, user: alice.id, token: UInt8(index))
            if index % 2 == 0 { _ = Self.wait { store.revokeSession(id: id, reason: "t", now: Self.t0, $0) } }
        }
        let live = try Self.value { store.liveSessions(userID: alice.id, now: Self.t0, $0) }
        #expect(live.count == 32)
        #expect(store.view.counts.sessions == 32)
        for record in live { #expect(store.view.session(id: record.id) != nil) }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
