#if canImport(AuthPostgres)
    import AuthCore
    import AuthPostgres
    import AuthServiceCore
    import Foundation
    import Logging
    import Testing

    /// Several daemons (stores) on one PostgreSQL database, with calls
    /// really in flight at once: what one does, the others see and cannot
    /// undo.
    @Suite(.enabled(if: PostgresTestServer.isAvailable), .timeLimit(.minutes(5)))
    struct PostgresInstancesTests {
        typealias Conformance = StoreConformanceTests
        static let t0 = StoreConformanceTests.t0

        func createUser(_ store: PostgresStore, _ email: String) throws -> UserRecord {
            try Conformance.value {
                store.createUser(email: email, passwordHash: "h", role: "user", active: true, now: Self.t0, $0)
            }
        }

        func openSession(_ store: PostgresStore, _ id: String, user: Int64, token: UInt8) throws {
            _ = try Conformance.value {
                store.createSession(
                    id: id, userID: user, refreshHash: Conformance.hash(token), now: Self.t0,
                    expiresAt: Self.t0 + 1_000, guard: .none, $0)
            }
        }

        /// Runs the calls at once, one thread each, and returns their results in order.
        func atOnce<Value: Sendable>(_ calls: [@Sendable () -> Value]) -> [Value] {
            let results = Guarded<[Int: Value]>([:])
            let start = DispatchSemaphore(value: 0)
            let group = DispatchGroup()
            for (index, call) in calls.enumerated() {
                DispatchQueue.global().async(group: group) {
                    start.wait()
                    let value = call()
                    results.withLock { $0[index] = value }
                }
            }
            for _ in calls { start.signal() }
            group.wait()
            return results.withLock { dictionary in (0..<calls.count).map { dictionary[$0]! } }
        }

        /// The log says why a database could not be reached (refused, a
        /// firewall's EPERM, a time-out), not only that it could not.
        @Test func aDatabaseThatCannotBeReachedIsReportedWithTheReason() throws {
            // Port 1 on loopback: nothing listens there.
            let url = try DatabaseURL.parse("postgresql://postgres@127.0.0.1:1/authd?sslmode=disable")
            #expect {
                _ = try PostgresStore.openBlocking(
                    url: url, options: PostgresStore.Options(timeout: .seconds(3)),
                    logger: Logger(label: "authd.test.unreachable"), now: Self.t0)
            } throws: { error in
                let text = PostgresStore.describe(error)
                return text.hasPrefix("connectionError: ") && text.lowercased().contains("refused")
            }
        }

        @Test func daemonsStartingTogetherMigrateOnce() throws {
            guard let url = PostgresTestServer.url else { return }
            var server = try DatabaseURL.parse(url)
            let name = "authd_migrate_\(UInt32.random(in: 0...UInt32.max))"
            try PostgresTestServer.run("CREATE DATABASE \(name)", on: server)
            server.database = name
            let target = server
            let opened: [String?] = atOnce(
                (0..<4).map { _ in
                    { @Sendable () -> String? in
                        do {
                            let store = try PostgresStore.openBlocking(
                                url: target, logger: .init(label: "test"), now: Self.t0)
                            store.shutdown()
                            return nil
                        } catch {
                            return String(describing: error)
                        }
                    }
                })
            #expect(opened.compactMap { $0 }.isEmpty, "\(opened)")
            let stores = try (0..<2).map { _ in
                try PostgresStore.openBlocking(url: target, logger: .init(label: "test"), now: Self.t0)
            }
            defer { for store in stores { store.shutdown() } }
            let user = try createUser(stores[0], "first@example.com")
            for store in stores {
                #expect(try Conformance.value { store.user(id: user.id, $0) }?.email == "first@example.com")
            }
        }

        /// A rolling upgrade: a newer authd migrated the database. This one
        /// keeps running on it while the schema says it still can, and
        /// refuses to start, by name, once it says it cannot.
        @Test func aNewerSchemaIsUsedWhileItSaysOlderDaemonsCan() throws {
            let server = try PostgresTestServer.makeDatabase()
            let first = try PostgresStore.openBlocking(url: server, logger: .init(label: "test"), now: Self.t0)
            first.shutdown()
            try PostgresTestServer.run(
                "INSERT INTO authd_schema VALUES (99, now(), 1, '9.9.0')", on: server)
            let compatible = try PostgresStore.openBlocking(url: server, logger: .init(label: "test"), now: Self.t0)
            _ = try createUser(compatible, "still@example.com")
            compatible.shutdown()
            try PostgresTestServer.run(
                "INSERT INTO authd_schema VALUES (100, now(), 50, '10.0.0')", on: server)
            #expect {
                _ = try PostgresStore.openBlocking(url: server, logger: .init(label: "test"), now: Self.t0)
            } throws: { error in
                String(describing: error).contains("version 100") && String(describing: error).contains("version 50")
            }
        }

        @Test func aUserCreatedOnOneIsSeenByEveryOther() throws {
            let stores = try PostgresTestServer.makeStores(count: 3)
            defer { for store in stores { store.shutdown() } }
            let user = try createUser(stores[0], "everywhere@example.com")
            // Answered on A means in A's view at once.
            #expect(stores[0].view.user(id: user.id) == user.snapshot)
            for store in stores.dropFirst() {
                #expect(try Conformance.value { store.user(email: "everywhere@example.com", $0) }?.id == user.id)
                #expect(eventually { store.view.user(id: user.id) == user.snapshot })
            }
        }

        @Test func oneEmailIsTakenOnceWhoeverAsksAtOnce() throws {
            let stores = try PostgresTestServer.makeStores(count: 2)
            defer { for store in stores { store.shutdown() } }
            for round in 0..<5 {
                let email = "race\(round)@example.com"
                let results = atOnce(
                    (0..<6).map { index in
                        let store = stores[index % 2]
                        return { @Sendable in
                            Conformance.wait {
                                store.createUser(
                                    email: email, passwordHash: "h", role: "user", active: true, now: Self.t0, $0)
                            }
                        }
                    })
                #expect(results.filter { (try? $0.get()) != nil }.count == 1)
                #expect(results.filter { $0 == .failure(.emailTaken) }.count == 5)
            }
        }

        static let limits = LoginThrottle.Limits(accountMaxFailures: 5, clientMaxFailures: 50, window: 900)

        func reserve(
            _ store: PostgresStore, account: String, client: String, now: Int64 = t0, holdFor: Int64 = 30
        ) -> Result<LoginReservation, StoreError> {
            Conformance.wait {
                store.reserveLoginAttempt(
                    account: account, client: client, limits: Self.limits, now: now, holdFor: holdFor, $0)
            }
        }

        func finish(
            _ store: PostgresStore, _ id: Int64, account: String, client: String, _ outcome: LoginThrottle.Outcome
        ) throws -> [String: LoginThrottle.Counter] {
            try Conformance.value {
                store.finishLoginAttempt(
                    id, account: account, client: client, outcome: outcome, limits: Self.limits, now: Self.t0, $0)
            }
        }

        /// Ten attempts on one account at once, half on each daemon: five
        /// places, whichever daemon asks; the rest wait. Five failures spread
        /// over both lock the account on both; a success clears it.
        @Test func loginLimitsHoldAcrossDaemonsAndAttemptsAtOnce() throws {
            let stores = try PostgresTestServer.makeStores(count: 2)
            defer { for store in stores { store.shutdown() } }
            let account = "account:spread@example.com"
            let results = atOnce(
                (0..<10).map { index in
                    let store = stores[index % 2]
                    let client = "client:uid:\(1000 + index)"
                    return { @Sendable in (client, reserve(store, account: account, client: client)) }
                })
            var held: [(store: PostgresStore, id: Int64, client: String)] = []
            for (index, (client, result)) in results.enumerated() {
                switch result {
                case .success(.reserved(let id, _)): held.append((stores[index % 2], id, client))
                case .success(.wait): break
                default: Issue.record("unexpected \(result)")
                }
            }
            #expect(held.count == 5)
            #expect(results.filter { if case .success(.wait) = $0.1 { true } else { false } }.count == 5)
            var last: [String: LoginThrottle.Counter] = [:]
            for attempt in held {
                last = try finish(attempt.store, attempt.id, account: account, client: attempt.client, .failed)
            }
            #expect(last[account] == LoginThrottle.Counter(failures: 5, windowStart: Self.t0))
            for store in stores {
                #expect(
                    reserve(store, account: account, client: "client:uid:1")
                        == .success(.limited(retryAfter: 900, counters: [account: last[account]!])))
            }
            // The window ends: a place again, and a success clears the count.
            guard
                case .success(.reserved(let id, _)) = reserve(
                    stores[1], account: account, client: "client:uid:1", now: Self.t0 + 900)
            else {
                Issue.record("no place after the window")
                return
            }
            let after = try finish(stores[1], id, account: account, client: "client:uid:1", .succeeded)
            #expect(after[account] == nil)
        }

        /// A daemon that dies mid-hash never ends its reservation: once the
        /// place expires (the server's clock) it counts as a failure, so an
        /// attempt is always counted, as pending or as failed; and an
        /// attempt that does end after its place expired is not counted
        /// twice.
        @Test func aReservationNeverEndedCountsAsAFailureWhenItExpires() throws {
            let stores = try PostgresTestServer.makeStores(count: 2)
            defer { for store in stores { store.shutdown() } }
            let account = "account:dies@example.com"
            var ids: [Int64] = []
            for index in 0..<5 {
                guard
                    case .success(.reserved(let id, _)) = reserve(
                        stores[0], account: account, client: "client:\(index)", holdFor: 0)
                else {
                    Issue.record("no place for attempt \(index)")
                    return
                }
                ids.append(id)
            }
            // All five expired unended: five failures, the account is locked.
            guard case .success(.limited(_, let counters)) = reserve(stores[1], account: account, client: "client:x")
            else {
                Issue.record("expired places were not counted")
                return
            }
            #expect(counters[account]?.failures == 5)
            // The first attempt ends after all, failed: still five.
            let after = try finish(stores[0], ids[0], account: account, client: "client:0", .failed)
            #expect(after[account]?.failures == 5)
            #expect(after["client:0"]?.failures == 1)
        }

        /// The sweeper counts the places of attempts no daemon will end (a
        /// key nobody tries again would keep them for ever), and leaves the
        /// ones still live.
        @Test func theSweeperCountsExpiredPlacesAsFailures() async throws {
            let stores = try PostgresTestServer.makeStores(count: 2)
            defer { for store in stores { store.shutdown() } }
            let account = "account:swept@example.com"
            for index in 0..<2 {
                guard
                    case .success(.reserved) = reserve(
                        stores[0], account: account, client: "client:\(index)", holdFor: 0)
                else {
                    Issue.record("no place for attempt \(index)")
                    return
                }
            }
            // Live for an hour: a loaded machine may take many seconds to
            // get to the sweep.
            guard
                case .success(.reserved(let live, _)) = reserve(
                    stores[0], account: account, client: "client:live", holdFor: 3_600)
            else {
                Issue.record("no live place")
                return
            }
            _ = try await stores[1].sweep(now: Self.t0, loginWindow: Self.limits.window)
            // Counted once, by the sweep: the live place's end finds them gone.
            let after = try finish(stores[0], live, account: account, client: "client:live", .abandoned)
            #expect(after[account]?.failures == 2)
            #expect(after["client:live"] == nil)
            guard
                case .success(.reserved(_, let counters)) = reserve(stores[1], account: "account:b", client: "client:0")
            else {
                Issue.record("no place for another account")
                return
            }
            #expect(counters["client:0"]?.failures == 1)
        }

        /// A place that has not expired holds: a sixth attempt waits.
        @Test func aLivePlaceHolds() throws {
            let stores = try PostgresTestServer.makeStores(count: 2)
            defer { for store in stores { store.shutdown() } }
            let account = "account:holds@example.com"
            for index in 0..<5 {
                guard case .success(.reserved) = reserve(stores[0], account: account, client: "client:\(index)") else {
                    Issue.record("no place for attempt \(index)")
                    return
                }
            }
            guard case .success(.wait) = reserve(stores[1], account: account, client: "client:x") else {
                Issue.record("a sixth place while five are held")
                return
            }
        }

        @Test func aRefreshTokenPresentedToTwoDaemonsAtOnceRotatesOnce() throws {
            let stores = try PostgresTestServer.makeStores(count: 2)
            defer { for store in stores { store.shutdown() } }
            let user = try createUser(stores[0], "rotate@example.com")
            for round in 0..<5 {
                let session = "s\(round)"
                try openSession(stores[0], session, user: user.id, token: UInt8(round))
                let outcomes = atOnce(
                    (0..<2).map { index in
                        let store = stores[index]
                        return { @Sendable in
                            Conformance.wait {
                                store.rotateRefreshToken(
                                    sessionID: session, presented: Conformance.hash(UInt8(round)),
                                    presentedIssuedAt: nil,
                                    next: Conformance.hash(UInt8(100 + 10 * round + index)), now: Self.t0 + 1,
                                    expiresAt: Self.t0 + 2_000, grace: nil, $0)
                            }
                        }
                    })
                // One rotates; the other presented a token that is no longer
                // current: reuse, and the session is revoked everywhere.
                #expect(outcomes.filter { $0 == .success(.rotated(user.snapshot)) }.count == 1)
                #expect(outcomes.filter { $0 == .success(.reused(userID: user.id)) }.count == 1)
                for store in stores { #expect(eventually { store.view.session(id: session) == nil }) }
            }
        }

        /// Under a grace window, the same token at two daemons at once: one
        /// rotates, the other answers with the successor the first stored
        /// (both clients converge on one child), and the session lives on.
        @Test func aRefreshTokenPresentedToTwoDaemonsAtOnceUnderAGraceWindowConverges() throws {
            let stores = try PostgresTestServer.makeStores(count: 2)
            defer { for store in stores { store.shutdown() } }
            let user = try createUser(stores[0], "grace@example.com")
            for round in 0..<5 {
                let session = "g\(round)"
                try openSession(stores[0], session, user: user.id, token: UInt8(round))
                let outcomes = atOnce(
                    (0..<2).map { index in
                        let store = stores[index]
                        let next = UInt8(100 + 10 * round + index)
                        return { @Sendable in
                            Conformance.wait {
                                store.rotateRefreshToken(
                                    sessionID: session, presented: Conformance.hash(UInt8(round)),
                                    presentedIssuedAt: nil, next: Conformance.hash(next), now: Self.t0 + 1,
                                    expiresAt: Self.t0 + 2_000, grace: RefreshGrace(window: 30, sealedNext: [next]), $0)
                            }
                        }
                    })
                guard let winner = outcomes.firstIndex(of: .success(.rotated(user.snapshot))) else {
                    Issue.record("no daemon rotated: \(outcomes)")
                    continue
                }
                #expect(
                    outcomes[1 - winner]
                        == .success(
                            .replayed(
                                user.snapshot, sealedNext: [UInt8(100 + 10 * round + winner)],
                                expiresAt: Self.t0 + 2_000)))
                for store in stores { #expect(eventually { store.view.session(id: session) != nil }) }
            }
        }

        /// Replays of one spent token on three daemons, all queued behind
        /// another client's lock on the session: each is decided on the
        /// grace row as the previous lock holder left it, so exactly three
        /// are replays, the fourth is reuse, and the rest find the session
        /// revoked. (A decision on the row as read before the wait once let
        /// all six through.)
        @Test func replaysQueuedBehindOneLockAreCountedAcrossDaemons() throws {
            let database = try PostgresTestServer.makeDatabase()
            let stores = try (0..<3).map { _ in
                try PostgresStore.openBlocking(
                    url: database, options: .init(poolSize: 4, feedInterval: .milliseconds(20)),
                    logger: Logger(label: "authd.test.postgres"), now: Self.t0)
            }
            defer { for store in stores { store.shutdown() } }
            let user = try createUser(stores[0], "count@example.com")
            try openSession(stores[0], "c", user: user.id, token: 1)
            let grace = RefreshGrace(window: 30, sealedNext: [2])
            #expect(
                try Conformance.value {
                    stores[0].rotateRefreshToken(
                        sessionID: "c", presented: Conformance.hash(1), presentedIssuedAt: nil,
                        next: Conformance.hash(2), now: Self.t0 + 1, expiresAt: Self.t0 + 900, grace: grace, $0)
                } == .rotated(user.snapshot))
            let holder = Thread {
                try? PostgresTestServer.run(
                    "BEGIN; SELECT 1 FROM sessions WHERE id = 'c' FOR UPDATE; SELECT pg_sleep(2); COMMIT", on: database)
            }
            holder.start()
            try #require(
                eventually {
                    (try? PostgresTestServer.value(
                        """
                        SELECT count(*) FROM pg_stat_activity
                        WHERE datname = current_database() AND wait_event = 'PgSleep'
                        """, on: database)) == "1"
                })
            let outcomes = atOnce(
                (0..<6).map { index in
                    let store = stores[index % 3]
                    return { @Sendable in
                        Conformance.wait {
                            store.rotateRefreshToken(
                                sessionID: "c", presented: Conformance.hash(1), presentedIssuedAt: nil,
                                next: Conformance.hash(UInt8(10 + index)), now: Self.t0 + 2, expiresAt: Self.t0 + 902,
                                grace: RefreshGrace(window: 30, sealedNext: [UInt8(10 + index)]), $0)
                        }
                    }
                })
            let replayed = outcomes.filter {
                $0 == .success(.replayed(user.snapshot, sealedNext: [2], expiresAt: Self.t0 + 900))
            }
            #expect(replayed.count == 3, "\(outcomes)")
            #expect(outcomes.filter { $0 == .success(.reused(userID: user.id)) }.count == 1)
            #expect(outcomes.filter { if case .success(.invalid) = $0 { true } else { false } }.count == 2)
        }

        @Test func aRevocationOnOneDaemonHoldsOnTheOthers() throws {
            let stores = try PostgresTestServer.makeStores(count: 3)
            defer { for store in stores { store.shutdown() } }
            let user = try createUser(stores[0], "revoke@example.com")
            try openSession(stores[1], "one", user: user.id, token: 1)
            try openSession(stores[1], "two", user: user.id, token: 2)
            for store in stores { #expect(eventually { store.view.session(id: "two") != nil }) }
            #expect(try Conformance.value { stores[2].revokeSession(id: "one", reason: "admin", now: Self.t0, $0) })
            #expect(stores[2].view.session(id: "one") == nil)
            for store in stores { #expect(eventually { store.view.session(id: "one") == nil }) }
            // Deactivation on another daemon: every session, everywhere.
            _ = try Conformance.value {
                stores[0].updateUser(id: user.id, role: nil, active: false, email: nil, now: Self.t0, $0)
            }
            for store in stores {
                #expect(
                    eventually { store.view.session(id: "two") == nil && store.view.user(id: user.id)?.active == false }
                )
            }
            // A token of the revoked session cannot bring it back anywhere.
            let refreshed = Conformance.wait {
                stores[1].rotateRefreshToken(
                    sessionID: "two", presented: Conformance.hash(2), presentedIssuedAt: nil, next: Conformance.hash(9),
                    now: Self.t0 + 1, expiresAt: Self.t0 + 2_000, grace: nil, $0)
            }
            #expect(refreshed == .success(.invalid("session revoked")))
        }

        /// With a poll far longer than the test, only `NOTIFY` can bring one
        /// daemon's change to the other; and after their `LISTEN`
        /// connections are killed, they listen again by themselves.
        @Test func anIdleDaemonIsWokenByTheOthersCommitsAndListensAgainAfterALoss() throws {
            let server = try PostgresTestServer.makeDatabase()
            let options = PostgresStore.Options(poolSize: 2, feedInterval: .seconds(600))
            let logger = Logger(label: "authd.test.postgres")
            let stores = try (0..<2).map { _ in
                try PostgresStore.openBlocking(url: server, options: options, logger: logger, now: Self.t0)
            }
            defer { for store in stores { store.shutdown() } }
            let listening = """
                SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'
                    AND (query LIKE 'LISTEN%' OR query LIKE 'NOTIFY%')
                """
            let bothListen = "DO $$ BEGIN IF (\(listening)) <> 2 THEN RAISE EXCEPTION 'not yet'; END IF; END $$"
            #expect(eventually { (try? PostgresTestServer.run(bothListen, on: server)) != nil })

            let user = try createUser(stores[0], "woken@example.com")
            #expect(eventually { stores[1].view.user(id: user.id) != nil })
            try openSession(stores[1], "woken", user: user.id, token: 1)
            #expect(eventually { stores[0].view.session(id: "woken") != nil })

            try PostgresTestServer.run(
                """
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = current_database() AND backend_type = 'client backend'
                    AND (query LIKE 'LISTEN%' OR query LIKE 'NOTIFY%')
                """, on: server)
            #expect(eventually { (try? PostgresTestServer.run(bothListen, on: server)) != nil })
            #expect(try Conformance.value { stores[0].revokeSession(id: "woken", reason: "admin", now: Self.t0, $0) })
            #expect(eventually { stores[1].view.session(id: "woken") == nil })
        }

        @Test func aLoginCheckedOnOneDaemonCannotOpenAfterAPasswordResetOnAnother() throws {
            let stores = try PostgresTestServer.makeStores(count: 2)
            defer { for store in stores { store.shutdown() } }
            let user = try createUser(stores[0], "reset@example.com")
            // The login on B checked the password at generation 0; the reset
            // on A commits before B opens the session.
            _ = try Conformance.value {
                stores[0].setPasswordHash(
                    userID: user.id, hash: "new", keepingSession: nil, expectedGeneration: nil, now: Self.t0, $0)
            }
            let opened = Conformance.wait {
                stores[1].createSession(
                    id: "late", userID: user.id, refreshHash: Conformance.hash(7), now: Self.t0,
                    expiresAt: Self.t0 + 1_000, guard: SessionGuard(credentialGeneration: 0, maximumSessions: 10), $0)
            }
            #expect(opened == .failure(.credentialsChanged))
            #expect(try Conformance.value { stores[1].sessionExists(id: "late", $0) } == false)
        }

        @Test func aRevocationOnAHostWhoseClockRunsAheadStillHoldsOnTheOthers() throws {
            let stores = try PostgresTestServer.makeStores(count: 2)
            defer { for store in stores { store.shutdown() } }
            let user = try createUser(stores[0], "skew@example.com")
            // The session expires at t0 + 100 by A's clock.
            _ = try Conformance.value {
                stores[0].createSession(
                    id: "skewed", userID: user.id, refreshHash: Conformance.hash(3), now: Self.t0,
                    expiresAt: Self.t0 + 100, guard: .none, $0)
            }
            // B's clock is 200 s ahead: to B the session has expired, but a
            // logout_all on B must revoke it for A too.
            _ = try Conformance.value {
                stores[1].revokeSessions(userID: user.id, keeping: nil, reason: "logout_all", now: Self.t0 + 200, $0)
            }
            let refreshed = Conformance.wait {
                stores[0].rotateRefreshToken(
                    sessionID: "skewed", presented: Conformance.hash(3), presentedIssuedAt: nil,
                    next: Conformance.hash(4), now: Self.t0 + 50, expiresAt: Self.t0 + 1_000, grace: nil, $0)
            }
            #expect(refreshed == .success(.invalid("session revoked")))
        }

        @Test func theSessionLimitHoldsWhenDaemonsOpenSessionsAtOnce() throws {
            let stores = try PostgresTestServer.makeStores(count: 2)
            defer { for store in stores { store.shutdown() } }
            let user = try createUser(stores[0], "limit@example.com")
            let limit = SessionGuard(credentialGeneration: 0, maximumSessions: 3)
            let results = atOnce(
                (0..<10).map { index in
                    let store = stores[index % 2]
                    return { @Sendable in
                        Conformance.wait {
                            store.createSession(
                                id: "l\(index)", userID: user.id, refreshHash: Conformance.hash(UInt8(index)),
                                now: Self.t0 + Int64(index), expiresAt: Self.t0 + 1_000, guard: limit, $0)
                        }
                    }
                })
            #expect(results.allSatisfy { (try? $0.get()) != nil })
            let live = try Conformance.value { stores[1].liveSessions(userID: user.id, now: Self.t0, $0) }
            #expect(live.count == 3)
            for store in stores {
                #expect(
                    eventually {
                        (0..<10).filter { store.view.session(id: "l\($0)") != nil }.count == 3
                    })
            }
        }
    }
#endif
