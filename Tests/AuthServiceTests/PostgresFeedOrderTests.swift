#if canImport(AuthPostgres)
    import AuthCore
    @testable import AuthPostgres
    import AuthServiceCore
    import Foundation
    import Logging
    import Testing

    /// The change feed's positions follow commit order (a deferred trigger
    /// numbers a write's change rows under the feed's lock while it
    /// commits): a reader that has applied a position never misses a
    /// smaller one committed later.
    @Suite(.enabled(if: PostgresTestServer.isAvailable), .timeLimit(.minutes(5)))
    struct PostgresFeedOrderTests {
        typealias Conformance = StoreConformanceTests
        static let t0 = StoreConformanceTests.t0

        /// The test's gate: an advisory lock key of its own.
        static let gate: Int64 = 4_242

        /// How many hold (`granted`) or wait for the advisory lock `key` in
        /// the test's database (a bigint key is shown as its two halves,
        /// `objsubid` 1). Advisory locks are per database: tests running
        /// beside this one hold the feed's lock in theirs.
        static func locks(key: Int64, granted: Bool) -> String {
            """
            SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted = \(granted)
                AND classid = \(UInt32(truncatingIfNeeded: key >> 32)) AND objid = \(UInt32(truncatingIfNeeded: key))
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """
        }

        func openSession(_ store: PostgresStore, _ id: String, user: Int64, token: UInt8) throws {
            _ = try Conformance.value {
                store.createSession(
                    id: id, userID: user, refreshHash: Conformance.hash(token), now: Self.t0,
                    expiresAt: Self.t0 + 1_000, guard: .none, $0)
            }
        }

        /// A refresh has numbered its change row and is held in its commit
        /// (a test trigger, deferred after the numbering one, waits there
        /// for a gate the test opens). A revocation on another daemon commits meanwhile: it
        /// must be numbered after the refresh, so the other daemon, which
        /// reads its own revocation at once, still applies the refresh's
        /// row when it commits. Were a position taken without the lock held
        /// to the commit's end (a plain sequence default, or a numbering
        /// that released it early), the revocation would commit a larger
        /// position first and every reader would step over the refresh for
        /// good: its new expiry would never reach them.
        @Test func aRefreshNumberedBeforeASlowCommitIsNotSteppedOver() throws {
            let database = try PostgresTestServer.makeDatabase()
            let stores = try (0..<2).map { _ in
                try PostgresStore.openBlocking(
                    url: database, options: .init(poolSize: 2, feedInterval: .milliseconds(20)),
                    logger: Logger(label: "authd.test.postgres"), now: Self.t0)
            }
            defer { for store in stores { store.shutdown() } }
            let user = try Conformance.value {
                stores[0].createUser(
                    email: "order@example.com", passwordHash: "h", role: "user", active: true, now: Self.t0, $0)
            }
            try openSession(stores[0], "slow", user: user.id, token: 1)
            try openSession(stores[0], "other", user: user.id, token: 2)
            for store in stores { #expect(eventually { store.view.session(id: "other") != nil }) }
            // The test's trigger runs after the numbering one (deferred
            // triggers of one event fire in name order) and waits for a
            // gate: an advisory lock a psql session of the test holds.
            try PostgresTestServer.run(
                """
                CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.session_id = 'slow' THEN PERFORM pg_advisory_xact_lock_shared(\(Self.gate)); END IF;
                    RETURN NULL;
                END $$;
                CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON authd_changes
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();
                """, on: database)
            let gate = Thread {
                _ = try? PostgresTestServer.run(
                    "SELECT pg_advisory_lock(\(Self.gate)); SELECT pg_sleep(120)", on: database)
            }
            gate.start()
            #expect(
                eventually {
                    (try? PostgresTestServer.value(Self.locks(key: Self.gate, granted: true), on: database)) == "1"
                })

            let refreshed = Guarded<Result<RotationOutcome, StoreError>?>(nil)
            Thread {
                let outcome = Conformance.wait {
                    stores[0].rotateRefreshToken(
                        sessionID: "slow", presented: Conformance.hash(1), presentedIssuedAt: nil,
                        next: Conformance.hash(3), now: Self.t0 + 1, expiresAt: Self.t0 + 5_000, grace: nil, $0)
                }
                refreshed.withLock { $0 = outcome }
            }.start()
            // The refresh, numbered, waits at its commit for the gate,
            // holding the feed's lock.
            #expect(
                eventually {
                    (try? PostgresTestServer.value(Self.locks(key: Self.gate, granted: false), on: database)) == "1"
                })
            #expect(
                try PostgresTestServer.value(Self.locks(key: PostgresSchema.feedLock, granted: true), on: database)
                    == "1")
            // A revocation on the other daemon reaches its commit meanwhile
            // and must wait for the feed's lock; then the gate opens.
            let revoked = Guarded<Result<Bool, StoreError>?>(nil)
            Thread {
                let outcome = Conformance.wait {
                    stores[1].revokeSession(id: "other", reason: "admin", now: Self.t0, $0)
                }
                revoked.withLock { $0 = outcome }
            }.start()
            #expect(
                eventually {
                    (try? PostgresTestServer.value(
                        Self.locks(key: PostgresSchema.feedLock, granted: false), on: database)) == "1"
                })
            try PostgresTestServer.run(
                """
                SELECT pg_terminate_backend(pid) FROM pg_locks
                WHERE locktype = 'advisory' AND classid = 0 AND objid = \(Self.gate) AND objsubid = 1 AND granted
                    AND mode = 'ExclusiveLock'
                    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """, on: database)

            #expect(eventually { revoked.withLock { $0 } != nil })
            #expect(revoked.withLock { $0 } == .success(true))
            #expect(eventually { refreshed.withLock { $0 } != nil })
            #expect(refreshed.withLock { $0 } == .success(.rotated(user.snapshot)))
            for store in stores {
                #expect(eventually { store.view.session(id: "slow")?.expiresAt == Self.t0 + 5_000 })
                // The revocation commits after the refresh (it waited for
                // the feed's lock), so a read may hold the one and not yet
                // the other; a reader that stepped over it never drops it.
                #expect(eventually { store.view.session(id: "other") == nil })
            }
        }
    }
#endif
