#if canImport(AuthPostgres)
    import AuthCore
    @testable import AuthPostgres
    import Foundation
    import Testing

    /// Plans made once stay good when the tables grow. The feed's read and
    /// the commit's numbering trigger are each planned once per server
    /// session, from the statistics of that moment; on a new database those
    /// describe tables of a page or two, and a plan that reads such a table
    /// whole goes on reading it whole, on every read and every commit, as
    /// it grows by thousands of rows a second (until the next ANALYZE).
    /// Each test plans while the tables are small, grows them in the same
    /// server session (no ANALYZE, nothing that would make it plan again),
    /// and counts the rows one more run reads, whole or through an index
    /// (`pg_stat_xact_user_tables`, the session's counts not yet reported:
    /// one psql command string reports none until its end).
    @Suite(.enabled(if: PostgresTestServer.isAvailable), .timeLimit(.minutes(5)))
    struct PostgresPlanTests {
        static let t0: Int64 = 1_800_000_000

        /// A migrated database with one user, `sessions` sessions and one
        /// numbered change row per session, analyzed while that small or
        /// not at all (a new database: only `sessions` has statistics,
        /// from schema 3).
        func smallDatabase(sessions: Int, analyzed: Bool) async throws -> DatabaseURL {
            let database = try await PostgresTestServer.makeMigratedDatabase()
            try PostgresTestServer.run(
                """
                BEGIN;
                \(Self.insertUser(1))
                \(Self.insertSessions(user: 1, from: 1, count: sessions))
                COMMIT;
                \(analyzed ? "ANALYZE" : "")
                """, on: database)
            return database
        }

        static func insertUser(_ id: Int) -> String {
            """
            INSERT INTO users (id, email, password_hash, role, active, created_at, updated_at)
                VALUES (\(id), 'plan\(id)@example.com', 'h', 'user', true, \(t0), \(t0));
            """
        }

        /// Sessions `s<n>` of `user` with one change row each (numbered at
        /// the commit, in the order of `n`).
        static func insertSessions(user: Int, from first: Int, count: Int) -> String {
            guard count > 0 else { return "" }
            let last = first + count - 1
            return """
                INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, refresh_hash,
                        refresh_issued_at, refresh_expires_at)
                    SELECT 's' || n, \(user), \(t0), \(t0), \(t0 + 1_000), '\\x00', \(t0), \(t0 + 1_000)
                    FROM generate_series(\(first), \(last)) n;
                INSERT INTO authd_changes (user_id, session_id)
                    SELECT \(user), 's' || n FROM generate_series(\(first), \(last)) n ORDER BY n;
                """
        }

        /// A psql select printing `marker=` and the rows read so far from
        /// `tables`, from the tables themselves and through their indexes.
        static func rowsRead(_ marker: String, _ tables: [String]) -> String {
            let names = tables.map { "'\($0)'" }.joined(separator: ", ")
            return """
                SELECT '\(marker)=' || coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)
                    FROM pg_stat_xact_user_tables WHERE relname IN (\(names));
                """
        }

        /// The number a psql script printed after `marker=`.
        static func marked(_ marker: String, in output: String) -> Int? {
            output.split(separator: "\n").lazy.compactMap { line -> Int? in
                guard line.hasPrefix("\(marker)=") else { return nil }
                return Int(line.dropFirst(marker.count + 1))
            }.first
        }

        @Test(arguments: [false, true])
        func theFeedReadProbesIndexesAfterTheTablesGrew(analyzedWhileSmall: Bool) async throws {
            let small = analyzedWhileSmall ? 20 : 0
            let grown = 20_000
            // The grown sessions' change rows, then one for all of user 2's.
            let last = small + grown + 1
            let database = try await smallDatabase(sessions: small, analyzed: analyzedWhileSmall)
            let settings = PostgresStore.feedSessionParameters.map { "SET \($0.0) = '\($0.1)';" }.joined(
                separator: "\n")
            let tables = ["authd_changes", "sessions", "users"]
            let output = try PostgresTestServer.value(
                """
                BEGIN;
                SET jit = off; -- as on every connection of the daemon's
                \(settings)
                PREPARE feed(bigint) AS \(FeedBatchRead.sql);
                EXECUTE feed(0);
                COMMIT;
                BEGIN;
                \(Self.insertSessions(user: 1, from: small + 1, count: grown))
                UPDATE sessions SET revoked_at = \(Self.t0) WHERE id = 's\(small + grown)';
                \(Self.insertUser(2))
                INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, refresh_hash,
                        refresh_issued_at, refresh_expires_at)
                    SELECT id, 2, \(Self.t0), \(Self.t0), \(Self.t0 + 1_000), '\\x00', \(Self.t0), \(Self.t0 + 1_000)
                    FROM unnest(ARRAY['u2a', 'u2b', 'u2c']) id;
                COMMIT;
                BEGIN;
                INSERT INTO authd_changes (user_id, all_sessions) VALUES (2, true);
                COMMIT;
                \(Self.rowsRead("before", tables))
                EXECUTE feed(\(last - 10));
                \(Self.rowsRead("after", tables))
                EXECUTE feed(0);
                \(Self.rowsRead("caught-up", tables))
                """, on: database)
            // The read's rows: the last ten change rows; their sessions'
            // users (none for the revoked one, none for the row naming all
            // of user 2's); user 2's live sessions.
            let firstRead = last - 9
            let read = output.split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false) }
                .filter { (fields: [Substring]) -> Bool in fields.count == 15 && Int(fields[2]) ?? 0 >= firstRead }
            #expect(read.map { Int($0[2]) } == Array(firstRead...last))
            #expect(read.map { $0[6] } == Array(repeating: "1", count: 8) + ["", ""])
            let userTwoSessions = read.last.map { Set($0[13].dropFirst().dropLast().split(separator: ",")) }
            #expect(userTwoSessions == ["u2a", "u2b", "u2c"])
            let before = try #require(Self.marked("before", in: output))
            let after = try #require(Self.marked("after", in: output))
            // 10 change rows: their index entries, a probe per session, and
            // user 2's three sessions.
            #expect(after - before <= 40, "\(after - before) rows read for 10 changes")
            // A daemon catching up from far behind: a full batch of the
            // oldest rows, each read once with its session, not every row
            // past the position to sort them.
            let caughtUp = try #require(Self.marked("caught-up", in: output))
            #expect(
                caughtUp - after <= 2 * FeedBatchRead.limit + 40,
                "\(caughtUp - after) rows read for \(FeedBatchRead.limit) changes")
        }

        @Test func theNumberingTriggerProbesTheKeyAfterTheTableGrew() async throws {
            let database = try await smallDatabase(sessions: 20, analyzed: true)
            // Six commits while the table is small: plpgsql plans the first
            // five runs for their values, then keeps one plan.
            let smallCommits = (1...6).map { _ in
                "BEGIN; INSERT INTO authd_changes (user_id, all_sessions) VALUES (1, true); COMMIT;"
            }.joined(separator: "\n")
            let output = try PostgresTestServer.value(
                """
                \(smallCommits)
                BEGIN;
                INSERT INTO authd_changes (user_id, all_sessions) SELECT 1, true FROM generate_series(1, 3000);
                COMMIT;
                BEGIN;
                INSERT INTO authd_changes (user_id, all_sessions) VALUES (1, true);
                \(Self.rowsRead("before", ["authd_changes"]))
                SET CONSTRAINTS ALL IMMEDIATE;
                \(Self.rowsRead("after", ["authd_changes"]))
                COMMIT;
                SELECT 'unnumbered=' || count(*) FROM authd_changes WHERE position IS NULL;
                SELECT 'numbered=' || count(*) FROM authd_changes WHERE position IS NOT NULL;
                """, on: database)
            #expect(Self.marked("unnumbered", in: output) == 0)
            #expect(Self.marked("numbered", in: output) == 20 + 6 + 3000 + 1)
            let before = try #require(Self.marked("before", in: output))
            let after = try #require(Self.marked("after", in: output))
            #expect(after - before <= 2, "\(after - before) rows read to number one")
        }

        /// An attempt's reservation and end touch its own two keys' rows
        /// however many other accounts and clients have failures or places
        /// pending (`login_failures` keeps a row per failing account or
        /// client: an attacker makes thousands).
        @Test func theLoginLimitFunctionsProbeTheirKeysAfterTheTablesGrew() async throws {
            let database = try await smallDatabase(sessions: 0, analyzed: false)
            let keys = "ARRAY['account:plan@example.com', 'client:uid:1']"
            // One attempt, reserved and ended as a failure (place id `id`).
            func attempt(_ id: Int) -> String {
                """
                BEGIN;
                SELECT * FROM authd_login_state(\(keys), 900, \(Self.t0));
                INSERT INTO login_attempts (id, key, expires_at)
                    SELECT \(id), k, extract(epoch FROM now())::bigint + 60 FROM unnest(\(keys)) AS k;
                COMMIT;
                SELECT * FROM authd_finish_login(\(id), 'account:plan@example.com', 'client:uid:1', 'failed', 900,
                    \(Self.t0));
                """
            }
            // Six attempts on small, analyzed tables: plpgsql plans the first
            // five runs for their values, then keeps one plan.
            let output = try PostgresTestServer.value(
                """
                SET jit = off;
                INSERT INTO login_failures SELECT 'client:small' || n, 1, \(Self.t0) FROM generate_series(1, 5) n;
                INSERT INTO login_attempts SELECT n, 'client:small' || n, 4000000000 FROM generate_series(1, 5) n;
                ANALYZE login_failures;
                ANALYZE login_attempts;
                \((1...6).map(attempt).joined(separator: "\n"))
                BEGIN;
                INSERT INTO login_failures SELECT 'client:f' || n, 1, \(Self.t0) FROM generate_series(1, 20000) n;
                INSERT INTO login_attempts SELECT 100 + n, 'client:p' || n, 4000000000 FROM generate_series(1, 5000) n;
                -- A place on the account whose daemon died: it expired.
                INSERT INTO login_attempts VALUES (99, 'account:plan@example.com', 1);
                COMMIT;
                \(Self.rowsRead("before", ["login_failures", "login_attempts"]))
                \(attempt(7))
                \(Self.rowsRead("after", ["login_failures", "login_attempts"]))
                SELECT 'failures=' || failures FROM login_failures WHERE key = 'account:plan@example.com';
                SELECT 'places=' || count(*) FROM login_attempts WHERE key = 'account:plan@example.com';
                """, on: database)
            // Seven failures counted and the expired place's, no place left
            // behind (the functions count; refusing the sixth attempt is the
            // throttle's rule, not theirs).
            #expect(Self.marked("failures", in: output) == 8)
            #expect(Self.marked("places", in: output) == 0)
            let before = try #require(Self.marked("before", in: output))
            let after = try #require(Self.marked("after", in: output))
            // Each key's counter and pending places, and the place's two
            // rows: 10 probes, in the reservation and at the end (65,020
            // rows with plans that scan).
            #expect(after - before <= 20, "\(after - before) rows read for one attempt")
        }

        /// A daemon that knows only schema 6 locks a login's keys with its
        /// own statement; schema 7's functions must take the very same
        /// locks, or the two would decide on one account at once.
        @Test func theLoginFunctionsTakeTheLocksOfSchemaSixStatements() async throws {
            let database = try await PostgresTestServer.makeMigratedDatabase()
            let holder = Thread {
                // Schema 6's `lockCounters`, as such a daemon runs it.
                _ = try? PostgresTestServer.run(
                    """
                    BEGIN;
                    SELECT pg_advisory_xact_lock(\(PostgresSchema.loginLockSpace), h)
                    FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(ARRAY['account:old@example.com']) AS k
                        ORDER BY h) AS locks;
                    SELECT pg_sleep(60);
                    COMMIT;
                    """, on: database)
            }
            holder.start()
            let held = """
                SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                    AND classid = \(UInt32(bitPattern: PostgresSchema.loginLockSpace))
                    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """
            #expect(eventually { (try? PostgresTestServer.value(held, on: database)) == "1" })
            for call in [
                "SELECT * FROM authd_login_state(ARRAY['account:old@example.com', 'client:uid:1'], 900, \(Self.t0))",
                "SELECT * FROM authd_finish_login(1, 'account:old@example.com', 'client:uid:1', 'failed', 900, \(Self.t0))",
            ] {
                #expect(throws: (any Error).self) {
                    try PostgresTestServer.run("SET lock_timeout = '200ms'; \(call)", on: database)
                }
            }
            // Another account's keys are not held.
            try PostgresTestServer.run(
                """
                SET lock_timeout = '200ms';
                SELECT * FROM authd_login_state(ARRAY['account:new@example.com', 'client:uid:1'], 900, \(Self.t0))
                """, on: database)
            // The holder has done its part (its minute only outlasts a slow
            // machine's steps above).
            try PostgresTestServer.run(
                """
                SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
                    AND classid = \(UInt32(bitPattern: PostgresSchema.loginLockSpace))
                    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """, on: database)
        }
    }
#endif
