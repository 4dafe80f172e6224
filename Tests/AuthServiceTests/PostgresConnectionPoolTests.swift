#if canImport(AuthPostgres)
    import AuthCore
    @testable import AuthPostgres
    import AuthServiceCore
    import Foundation
    import Logging
    import PostgresNIO
    import Testing

    /// authd's connection pool against the real test server: its bound,
    /// its queue, and what it does with a connection after a failure.
    @Suite(.enabled(if: PostgresTestServer.isAvailable), .timeLimit(.minutes(5)))
    struct PostgresConnectionPoolTests {
        let logger = Logger(label: "authd.test.pool")

        /// A pool on a new database; its connections carry `name` as their
        /// application name, so the server can count them.
        func makePool(size: Int, name: String, timeout: Duration = .seconds(5)) throws -> PostgresConnectionPool {
            var url = try PostgresTestServer.makeDatabase()
            url.applicationName = name
            let configuration = try PostgresStore.connectionConfiguration(url: url, password: nil, timeout: timeout)
            return PostgresConnectionPool(configuration: configuration, size: size, logger: logger)
        }

        func integers(_ sql: String, _ pool: PostgresConnectionPool) async throws -> [Int] {
            try await pool.withConnection { connection in
                var values: [Int] = []
                for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
                    .decode(Int.self)
                {
                    values.append(value)
                }
                return values
            }
        }

        func serverSideConnections(_ pool: PostgresConnectionPool, name: String) async throws -> Int {
            try await pool.withConnection { connection in
                var count = 0
                for try await found in try await connection.query(
                    "SELECT count(*)::int FROM pg_stat_activity WHERE application_name = \(name)", logger: logger
                ).decode(Int.self) {
                    count = found
                }
                return count
            }
        }

        @Test func manyLeasesAtOnceShareAtMostSizeConnections() async throws {
            let name = "pool-bound-\(UUID().uuidString.prefix(8))"
            let pool = try makePool(size: 3, name: name)
            defer { pool.close() }
            let peak = Locked(0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<24 {
                    group.addTask { [logger] in
                        try await pool.withConnection { connection in
                            peak.withLock { $0 = max($0, pool.counts.open) }
                            try await connection.query("SELECT pg_sleep(0.02)", logger: logger)
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(peak.withLock { $0 } <= 3)
            #expect(pool.counts.open <= 3)
            #expect(try await serverSideConnections(pool, name: name) <= 3)
        }

        @Test func aLeaseCancelledWhileItWaitsLeavesTheQueue() async throws {
            let pool = try makePool(size: 1, name: "pool-queue")
            defer { pool.close() }
            let holder = Task { [logger] in
                try await pool.withConnection { connection in
                    try await connection.query("SELECT pg_sleep(0.5)", logger: logger)
                }
            }
            try await Task.sleep(for: .milliseconds(100))
            let waiter = Task { [logger] in
                try await pool.withConnection { connection in
                    try await connection.query("SELECT 1", logger: logger)
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            waiter.cancel()
            await #expect(throws: CancellationError.self) { try await waiter.value }
            _ = try await holder.value
            // The connection went back to the pool, not to the cancelled waiter.
            #expect(pool.counts.open == 1 && pool.counts.idle == 1)
            #expect(try await integers("SELECT 1", pool) == [1])
        }

        /// The caller's timeout cancels a lease stuck in a long statement:
        /// the pool closes that connection and frees its slot at once,
        /// without waiting for the statement (a dead network would hang it),
        /// and the next lease gets a fresh connection.
        @Test func aLeaseCancelledMidStatementFreesItsSlotAtOnce() async throws {
            // The server's statement timeout is longer than the statement.
            let pool = try makePool(size: 1, name: "pool-cancel", timeout: .seconds(120))
            defer { pool.close() }
            await #expect(throws: StoreError.self) {
                try await PostgresStore.within(.milliseconds(300)) { [logger] in
                    try await pool.withConnection { connection in
                        try await connection.query("SELECT pg_sleep(60)", logger: logger)
                    }
                }
            }
            // Still sleeping on the server (for a minute), yet no longer the
            // pool's. (Polled: had the cancellation come while it was still
            // connecting, the lease ends a moment after the call.)
            var freed = false
            for _ in 0..<100 where !freed {
                freed = pool.counts.open == 0 && pool.counts.idle == 0
                if !freed { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(freed)
            #expect(try await integers("SELECT 7", pool) == [7])
        }

        /// An error the server reports, or one of authd's own inside a
        /// transaction, leaves the connection usable and the transaction
        /// rolled back; the pool keeps it.
        @Test func errorsInAStatementKeepTheConnectionAndRollBack() async throws {
            let pool = try makePool(size: 1, name: "pool-errors")
            defer { pool.close() }
            _ = try await pool.withConnection { connection in
                try await connection.query("CREATE TABLE t (id int PRIMARY KEY)", logger: logger)
            }
            await #expect(throws: PSQLError.self) {
                try await pool.withConnection { connection in
                    try await connection.query("SELECT * FROM no_such_table", logger: logger)
                }
            }
            #expect(pool.counts.open == 1 && pool.counts.idle == 1)
            await #expect(throws: (any Error).self) {
                try await pool.withTransaction(logger: logger) { connection in
                    try await connection.query("INSERT INTO t VALUES (1)", logger: logger)
                    throw StoreError.notFound
                }
            }
            #expect(pool.counts.open == 1 && pool.counts.idle == 1)
            #expect(try await integers("SELECT id FROM t", pool).isEmpty)
        }

        /// A statement prepared against a table not there yet fails; once
        /// the table exists it must run. postgres-nio keeps a failed
        /// preparation on its connection and repeats that error, so the
        /// pool must not hand that connection out again.
        @Test func aPreparationThatFailedIsNotRepeatedOnTheSameConnection() async throws {
            let pool = try makePool(size: 1, name: "pool-prepared")
            defer { pool.close() }
            await #expect(throws: PreparedStatementFailure.self) {
                _ = try await pool.withConnection { [logger] connection in
                    try await connection.rows(of: CountLater(), logger: logger)
                }
            }
            _ = try await integers("CREATE TABLE later (id int)", pool)
            _ = try await integers("INSERT INTO later VALUES (1), (2)", pool)
            let counted = try await pool.withConnection { [logger] connection in
                try await connection.rows(of: CountLater(), logger: logger)
            }
            #expect(counted == [2])
        }

        struct CountLater: PostgresPreparedStatement {
            static let sql = "SELECT count(*)::int FROM later"
            typealias Row = Int
            func makeBindings() throws -> PostgresBindings { PostgresBindings() }
            func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
        }

        @Test func aClosedPoolRefusesLeases() async throws {
            let pool = try makePool(size: 1, name: "pool-closed")
            pool.close()
            await #expect(throws: StoreError.self) {
                try await pool.withConnection { connection in
                    try await connection.query("SELECT 1", logger: logger)
                }
            }
        }
    }
#endif
