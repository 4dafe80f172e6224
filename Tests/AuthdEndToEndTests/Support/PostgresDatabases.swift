import AuthCore
import Foundation

/// Databases on the PostgreSQL test server (scripts/test.sh starts it and
/// sets AUTHD_TEST_DATABASE_URL), and private servers for tests that stop
/// theirs. Daemons built without PostgreSQL (the ASan run sets
/// AUTHD_WITHOUT_POSTGRES=1) skip these tests.
enum PostgresDatabases {
    static var serverURL: String? {
        let environment = ProcessInfo.processInfo.environment
        guard environment["AUTHD_WITHOUT_POSTGRES"] != "1", let url = environment["AUTHD_TEST_DATABASE_URL"],
            !url.isEmpty
        else { return nil }
        return url
    }

    static var isAvailable: Bool { serverURL != nil }

    /// A new, empty database on the shared test server: its URL.
    static func create() throws -> String {
        guard let serverURL else { throw DaemonError("no PostgreSQL test server") }
        return try create(on: serverURL)
    }

    static func create(on serverURL: String) throws -> String {
        var url = try DatabaseURL.parse(serverURL)
        let name = "authd_e2e_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        try psql("CREATE DATABASE \(name)", url: url)
        url.database = name
        guard case .socket(let directory, let port) = url.endpoint else { throw DaemonError("expected a socket URL") }
        return "postgresql://\(url.username)@/\(name)?host=\(directory)&port=\(port)"
    }

    static func psql(_ sql: String, url: DatabaseURL) throws {
        _ = try query(sql, url: url)
    }

    /// Runs `sql`; returns what it printed, unaligned and without headers.
    static func query(_ sql: String, url: DatabaseURL) throws -> String {
        var arguments = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", url.username, "-d", url.database]
        switch url.endpoint {
        case .socket(let directory, let port): arguments += ["-h", directory, "-p", String(port)]
        case .tcp(let host, let port): arguments += ["-h", host, "-p", String(port)]
        }
        let (status, output) = try run("/usr/bin/psql", arguments + ["-c", sql])
        guard status == 0 else { throw DaemonError("psql failed: \(output)") }
        return output
    }

    /// A server of the test's own (it may stop and restart it), through
    /// scripts/postgres-test-server.sh.
    final class PrivateServer {
        let directory: String
        let port: Int
        let url: String

        init() throws {
            directory = DaemonProcess.makeTemporaryDirectory() + "/pg"
            let first = Int.random(in: 56_000...60_000)
            let (status, output) = try PostgresDatabases.run(Self.script, ["start", directory, String(first)])
            guard status == 0, let line = output.split(separator: "\n").last(where: { $0.hasPrefix("postgresql://") })
            else { throw DaemonError("could not start a private PostgreSQL: \(output)") }
            url = String(line)
            // The script moves on to the next port when one is taken.
            port = (try? DatabaseURL.parse(url).endpoint.port) ?? first
        }

        static var script: String {
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
                    "scripts/postgres-test-server.sh"
                ).path
        }

        func stop() throws {
            let (status, output) = try PostgresDatabases.run(Self.script, ["stop", directory])
            guard status == 0 else { throw DaemonError("could not stop PostgreSQL: \(output)") }
        }

        func start() throws {
            let (status, output) = try PostgresDatabases.run(Self.script, ["start", directory, String(port)])
            guard status == 0 else { throw DaemonError("could not start PostgreSQL: \(output)") }
        }

        deinit {
            _ = try? PostgresDatabases.run(Self.script, ["stop", directory])
            try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent)
        }
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
