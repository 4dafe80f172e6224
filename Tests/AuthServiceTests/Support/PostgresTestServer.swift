import AuthCore
import AuthServiceCore
import Foundation
import Testing

#if canImport(AuthPostgres)
    @testable import AuthPostgres
    import Logging
    import PostgresNIO
#endif

/// The PostgreSQL server scripts/test.sh starts (scripts/postgres-test-server.sh):
/// its URL is in AUTHD_TEST_DATABASE_URL. Every store gets a database of
/// its own, so tests running at once never see each other's rows; stores
/// made together share one (several daemons on one database).
enum PostgresTestServer {
    static var url: String? {
        guard let url = ProcessInfo.processInfo.environment["AUTHD_TEST_DATABASE_URL"], !url.isEmpty else {
            return nil
        }
        return url
    }

    #if canImport(AuthPostgres)
        static var isAvailable: Bool { url != nil }

        /// `count` stores (daemons) on one new, empty database.
        /// A store's own writes poke its feed; `feedInterval` is how often it
        /// looks for the others' (tests of one store that are never shut
        /// down use a slow one, so they load the machine little).
        static func makeStores(count: Int, now: Int64 = 1_800_000_000, feedInterval: Duration = .milliseconds(20))
            throws -> [PostgresStore]
        {
            let server = try makeDatabase()
            let logger = Logger(label: "authd.test.postgres")
            let options = PostgresStore.Options(poolSize: 4, feedInterval: feedInterval)
            return try (0..<count).map { _ in
                try PostgresStore.openBlocking(url: server, options: options, logger: logger, now: now)
            }
        }

        /// A new, empty database on the test server.
        static func makeDatabase() throws -> DatabaseURL {
            guard let url else { throw TestServerMissing() }
            var server = try DatabaseURL.parse(url)
            let name = "authd_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            try run("CREATE DATABASE \(name)", on: server)
            server.database = name
            return server
        }

        /// A new database migrated to schema `target` (no daemon on it yet).
        static func makeMigratedDatabase(through target: Int = PostgresSchema.version) async throws -> DatabaseURL {
            let database = try makeDatabase()
            let logger = Logger(label: "authd.test.postgres")
            let pool = PostgresConnectionPool(
                configuration: try PostgresStore.connectionConfiguration(
                    url: database, password: nil, timeout: .seconds(5)),
                size: 1, logger: logger)
            defer { pool.close() }
            try await PostgresSchema.migrate(pool, through: target, logger: logger)
            return database
        }

        /// Runs one statement with psql (CREATE DATABASE cannot run in a
        /// transaction, and the tests need no second client library).
        static func run(_ sql: String, on server: DatabaseURL) throws {
            _ = try value(sql, on: server)
        }

        /// Runs one statement with psql and returns what it printed:
        /// unaligned, without headers, trimmed.
        static func value(_ sql: String, on server: DatabaseURL) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
            var components = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", server.username, "-d", server.database]
            switch server.endpoint {
            case .socket(let directory, let port): components += ["-h", directory, "-p", String(port)]
            case .tcp(let host, let port): components += ["-h", host, "-p", String(port)]
            }
            process.arguments = components + ["-A", "-t", "-c", sql]
            let errors = Pipe()
            let output = Pipe()
            process.standardError = errors
            process.standardOutput = output
            try process.run()
            let printed = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                throw TestServerMissing(message: "psql failed: \(message)")
            }
            return String(decoding: printed, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    #else
        static var isAvailable: Bool { false }
        static func makeStores(count: Int, feedInterval: Duration = .zero) throws -> [any CredentialStore] {
            throw TestServerMissing()
        }
    #endif
}

struct TestServerMissing: Error, CustomStringConvertible {
    var message = "no PostgreSQL test server (AUTHD_TEST_DATABASE_URL; scripts/test.sh starts one)"
    var description: String { message }
}

@Suite struct PostgresTestServerTests {
    /// scripts/test.sh sets AUTHD_REQUIRE_POSTGRES: there, a missing server
    /// fails the run instead of quietly leaving the PostgreSQL store untested.
    @Test func thePostgresStoreIsTestedWhereItIsRequired() {
        guard ProcessInfo.processInfo.environment["AUTHD_REQUIRE_POSTGRES"] == "1" else { return }
        #expect(PostgresTestServer.isAvailable, "AUTHD_REQUIRE_POSTGRES=1 but no test server or no AuthPostgres")
    }
}
