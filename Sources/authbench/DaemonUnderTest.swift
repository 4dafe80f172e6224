import AuthCore
import Foundation
import GRDB

#if canImport(Glibc)
    import Glibc
#endif

/// A real authd started on a temporary socket and state directory.
final class DaemonUnderTest {
    let directory: String
    let socket: String
    let state: String
    private(set) var process: Process?
    let binary: String

    init(binary: String) throws {
        self.binary = binary
        var template = Array("/tmp/authbench-XXXXXX".utf8CString)
        directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        socket = directory + "/authd.sock"
        state = directory + "/state"
    }

    /// Starts the daemon; returns the seconds from exec to the first answer.
    @discardableResult
    func start(_ flags: [String] = []) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--listen", socket, "--state-dir", state] + flags
        process.environment = ["PATH": "/usr/bin:/bin", "AUTHD_EVENT_TARGET": "stderr", "AUTHD_LOG_LEVEL": "error"]
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        let started = DispatchTime.now().uptimeNanoseconds
        try process.run()
        self.process = process
        let health = Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sys.health\"}\n".utf8)
        while DispatchTime.now().uptimeNanoseconds - started < 30_000_000_000 {
            if let connection = try? PipelinedConnection(path: socket) {
                connection.send(health)
                if !connection.readLines().isEmpty {
                    return Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                }
            }
            guard process.isRunning else { throw BenchError("authd exited at start") }
            usleep(200)
        }
        throw BenchError("authd did not answer")
    }

    func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }

    func remove() {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Resident memory of the daemon, in bytes.
    var residentBytes: Int {
        guard let pid = process?.processIdentifier,
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kilobytes * 1024
    }

    /// Adds `users` users (same known password hash) and `sessions` sessions
    /// (expiring at `sessionExpiry`) straight into the database, in one
    /// transaction, so large states take seconds rather than hours of bcrypt.
    /// The daemon must have created the schema (start it once first).
    func seed(users: Int, sessions: Int, passwordHash: String, sessionExpiry: Int64) throws {
        let queue = try DatabaseQueue(path: state + "/authd.sqlite3")
        let now = Int64(Date().timeIntervalSince1970)
        try queue.write { db in
            let base = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM users") ?? 0
            let insertUser = try db.makeStatement(
                sql:
                    "INSERT INTO users (email, password_hash, role, active, created_at, updated_at) VALUES (?, ?, 'user', 1, ?, ?)"
            )
            for index in 0..<users {
                try insertUser.execute(arguments: ["seed\(base + Int64(index))@example.com", passwordHash, now, now])
            }
            let insertSession = try db.makeStatement(
                sql: "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) VALUES (?, ?, ?, ?, ?)")
            let insertToken = try db.makeStatement(
                sql: "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES (?, ?, ?, ?)")
            for index in 0..<sessions {
                let id = "seed-\(base)-\(index)"
                try insertSession.execute(arguments: [
                    id, base + 1 + Int64(index % max(users, 1)), now, now, sessionExpiry,
                ])
                var hash = Data(count: 32)
                hash.withUnsafeMutableBytes { raw in
                    withUnsafeBytes(of: Int64(index) ^ (base << 32)) { raw.copyMemory(from: $0) }
                }
                hash[31] = 0xAB
                try insertToken.execute(arguments: [hash, id, now, sessionExpiry])
            }
        }
    }
}

/// A one-shot call on its own connection (set-up, not measured).
func call(_ socket: String, _ method: String, _ params: JSONObject) throws -> JSONObject {
    let connection = try PipelinedConnection(path: socket)
    let request: JSONObject = [
        "jsonrpc": .string("2.0"), "id": .int(1), "method": .string(method), "params": .object(params),
    ]
    connection.send(JSONWriter.encode(.object(request)) + [0x0A])
    guard let line = connection.readLines().first,
        let response = try JSONParser.parse(Array(line)).objectValue
    else { throw BenchError("\(method): no answer") }
    guard let result = response["result"]?.objectValue else {
        throw BenchError("\(method) failed: \(JSONWriter.encodeString(.object(response)))")
    }
    return result
}
