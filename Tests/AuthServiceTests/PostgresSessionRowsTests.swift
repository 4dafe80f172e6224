#if canImport(AuthPostgres)
    import AuthCore
    @testable import AuthPostgres
    import AuthServiceCore
    import Foundation
    import Logging
    import Testing

    /// What the PostgreSQL schema does with a session's row (schema 3): a
    /// refresh rewrites it in place, and the sweeper still finds it by the
    /// hour it expires in.
    @Suite(.enabled(if: PostgresTestServer.isAvailable), .timeLimit(.minutes(5)))
    struct PostgresSessionRowsTests {
        typealias Conformance = StoreConformanceTests
        static let t0 = StoreConformanceTests.t0

        /// A store (daemon) on `database`; `feedInterval` is how often it
        /// looks for other stores' changes when not woken.
        func openStore(_ database: DatabaseURL, feedInterval: Duration = .seconds(600)) throws -> PostgresStore {
            try PostgresStore.openBlocking(
                url: database, options: .init(poolSize: 2, feedInterval: feedInterval),
                logger: Logger(label: "authd.test.postgres"), now: Self.t0)
        }

        func openSession(_ store: PostgresStore, _ id: String, user: Int64, token: UInt8, expiresAt: Int64) throws {
            _ = try Conformance.value {
                store.createSession(
                    id: id, userID: user, refreshHash: Conformance.hash(token), now: Self.t0, expiresAt: expiresAt,
                    guard: .none, $0)
            }
        }

        /// A refresh changes no indexed column, so every rotation is a HOT
        /// update: the row is rewritten on its own page and no index gets
        /// an entry (before schema 3, none was: each rotation put a new
        /// entry into all four of the table's indexes).
        @Test func everyRefreshRewritesTheRowInPlace() throws {
            let database = try PostgresTestServer.makeDatabase()
            let store = try openStore(database)
            let user = try Conformance.value {
                store.createUser(
                    email: "hot@example.com", passwordHash: "h", role: "user", active: true, now: Self.t0, $0)
            }
            try openSession(store, "hot", user: user.id, token: 0, expiresAt: Self.t0 + 1_000)
            // Every expiry below falls in one hour: the indexed hour stays.
            #expect(Self.t0 % 3_600 + 1_020 < 3_600)
            for round in 0..<20 {
                // The one-statement path (the token is the current one).
                let outcome = Conformance.wait {
                    store.rotateRefreshToken(
                        sessionID: "hot", presented: Conformance.hash(UInt8(round)), presentedIssuedAt: nil,
                        next: Conformance.hash(UInt8(round + 1)), now: Self.t0 + Int64(round) + 1,
                        expiresAt: Self.t0 + 1_001 + Int64(round), grace: nil, $0)
                }
                #expect(outcome == .success(.rotated(user.snapshot)))
            }
            // A backend reports its table counts as it exits at the latest.
            store.shutdown()
            let counts = "SELECT n_tup_upd || ' ' || n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'sessions'"
            var seen = ""
            #expect(
                eventually {
                    seen = (try? PostgresTestServer.value(counts, on: database)) ?? ""
                    return seen == "20 20"
                }, "updates, HOT updates: \(seen)")
        }

        /// A refresh whose commit fails after its statement returned rows
        /// (here a deferred trigger refuses it; in life the backend ends at
        /// that moment) is not answered as rotated: the caller is never
        /// given a token the database does not hold, and the session keeps
        /// its current token. Once commits succeed again, it rotates.
        @Test func aRefreshWhoseCommitFailsIsNotAnsweredAsRotated() throws {
            let database = try PostgresTestServer.makeDatabase()
            let store = try openStore(database)
            defer { store.shutdown() }
            let user = try Conformance.value {
                store.createUser(
                    email: "commit@example.com", passwordHash: "h", role: "user", active: true, now: Self.t0, $0)
            }
            try openSession(store, "commit", user: user.id, token: 1, expiresAt: Self.t0 + 1_000)
            try PostgresTestServer.run(
                """
                CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'refused at commit'; END $$;
                CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON authd_changes
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_commit();
                """, on: database)
            let refused = Conformance.wait {
                store.rotateRefreshToken(
                    sessionID: "commit", presented: Conformance.hash(1), presentedIssuedAt: nil,
                    next: Conformance.hash(2), now: Self.t0 + 1, expiresAt: Self.t0 + 1_001, grace: nil, $0)
            }
            #expect((try? refused.get()) == nil, "\(refused)")
            #expect(
                try PostgresTestServer.value(
                    "SELECT encode(refresh_hash, 'hex') FROM sessions WHERE id = 'commit'", on: database)
                    == String(repeating: "01", count: 32))

            try PostgresTestServer.run("DROP TRIGGER refuse_commit ON authd_changes", on: database)
            let rotated = Conformance.wait {
                store.rotateRefreshToken(
                    sessionID: "commit", presented: Conformance.hash(1), presentedIssuedAt: nil,
                    next: Conformance.hash(2), now: Self.t0 + 2, expiresAt: Self.t0 + 1_002, grace: nil, $0)
            }
            #expect(rotated == .success(.rotated(user.snapshot)))
        }

        /// A rolling upgrade from schema 2, while another host holds the
        /// table: the sessions already there get their expiry hour, stay in
        /// the view, rotate in place and are swept; a daemon that knows
        /// only schema 2 could still use the database.
        @Test func aSchema2DatabaseIsUpgradedWithItsSessions() async throws {
            let database = try await PostgresTestServer.makeMigratedDatabase(through: 2)
            try PostgresTestServer.run(
                """
                INSERT INTO users (id, email, password_hash, role, active, created_at, updated_at)
                    VALUES (7, 'old@example.com', 'h', 'user', true, \(Self.t0), \(Self.t0));
                INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, refresh_hash,
                    refresh_issued_at, refresh_expires_at)
                    VALUES ('old', 7, \(Self.t0), \(Self.t0), \(Self.t0 + 1_000), '\\x\(String(repeating: "05", count: 32))',
                        \(Self.t0), \(Self.t0 + 1_000))
                """, on: database)
            #expect(try PostgresTestServer.value("SELECT max(version) FROM authd_schema", on: database) == "2")
            // Another host reads the table for longer than the upgrade waits
            // for its lock: the upgrade steps back, tries again, and is in
            // once the read ends.
            let reader = Thread {
                _ = try? PostgresTestServer.run(
                    "BEGIN; LOCK TABLE sessions IN ACCESS SHARE MODE; SELECT pg_sleep(4); COMMIT", on: database)
            }
            reader.start()
            let reading = """
                SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND c.relname = 'sessions' AND l.mode = 'AccessShareLock' AND l.granted
                """
            #expect(eventually { (try? PostgresTestServer.value(reading, on: database)) == "1" })

            let store = try openStore(database)
            defer { store.shutdown() }
            #expect(
                try PostgresTestServer.value(
                    "SELECT version || ' ' || oldest_reader FROM authd_schema ORDER BY version DESC LIMIT 1",
                    on: database) == "\(PostgresSchema.version) \(PostgresSchema.oldestReader[PostgresSchema.version]!)"
            )
            #expect(
                try PostgresTestServer.value("SELECT expiry_hour FROM sessions WHERE id = 'old'", on: database)
                    == String((Self.t0 + 1_000) / 3_600))
            #expect(store.view.session(id: "old") != nil)
            let rotated = Conformance.wait {
                store.rotateRefreshToken(
                    sessionID: "old", presented: Conformance.hash(5), presentedIssuedAt: nil,
                    next: Conformance.hash(6), now: Self.t0 + 1, expiresAt: Self.t0 + 1_001, grace: nil, $0)
            }
            let user = UserSnapshot(id: 7, email: "old@example.com", role: "user", active: true, createdAt: Self.t0)
            #expect(rotated == .success(.rotated(user)))
            let swept = try await store.sweep(now: Self.t0 + 1_001, loginWindow: 60)
            #expect(swept?.sessions == 1)
            #expect(eventually { store.view.session(id: "old") == nil })
        }

        /// The sweeper finds expired sessions through the index of the hour
        /// they expire in, and checks the second itself: sessions that
        /// ended (this hour or before) are deleted and leave every daemon's
        /// view; one ending later in the same hour, and one in the next
        /// hour, stay.
        @Test func theSweeperDeletesExactlyTheSessionsThatEnded() async throws {
            let database = try PostgresTestServer.makeDatabase()
            let stores = try (0..<2).map { _ in
                try openStore(database, feedInterval: .milliseconds(20))
            }
            defer { for store in stores { store.shutdown() } }
            let user = try Conformance.value {
                stores[0].createUser(
                    email: "swept@example.com", passwordHash: "h", role: "user", active: true, now: Self.t0, $0)
            }
            let hour = Self.t0 / 3_600 * 3_600 + 3_600
            let sessions: [(String, Int64)] = [
                ("before", hour - 100), ("ended", hour + 10), ("at-now", hour + 15), ("later", hour + 20),
                ("next-hour", hour + 3_605),
            ]
            for (index, (id, expiresAt)) in sessions.enumerated() {
                try openSession(stores[0], id, user: user.id, token: UInt8(index), expiresAt: expiresAt)
            }
            for store in stores { #expect(eventually { store.view.session(id: "next-hour") != nil }) }

            let result = try await stores[1].sweep(now: hour + 15, loginWindow: 60)
            #expect(result?.sessions == 3)
            let left = try PostgresTestServer.value(
                "SELECT string_agg(id, ',' ORDER BY id) FROM sessions", on: database)
            #expect(left == "later,next-hour")
            for store in stores {
                #expect(
                    eventually {
                        ["before", "ended", "at-now"].allSatisfy { store.view.session(id: $0) == nil }
                            && store.view.session(id: "later") != nil && store.view.session(id: "next-hour") != nil
                    })
            }
        }
    }
#endif
