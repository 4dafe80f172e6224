import AuthCore
import AuthCrypto
import AuthStore
import Foundation

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
        // Other uids (the fairness scenario's second peer) reach the socket.
        chmod(directory, 0o755)
        socket = directory + "/authd.sock"
        state = directory + "/state"
    }

    static let keyEncryptionKey = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()

    /// Starts the daemon; returns the seconds from exec to the first answer.
    @discardableResult
    func start(_ flags: [String] = [], environment: [String: String] = [:]) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--listen", socket, "--state-dir", state] + flags
        var base = ["PATH": "/usr/bin:/bin", "AUTHD_EVENT_TARGET": "stderr", "AUTHD_LOG_LEVEL": "error"]
        // A shared database seals its signing keys under this key: one for
        // every daemon this run starts.
        if flags.contains("--database-url") { base["AUTHD_KEY_ENCRYPTION_KEY"] = Self.keyEncryptionKey }
        process.environment = base.merging(environment) { $1 }
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
    /// (expiring at `sessionExpiry`) through the store's bulk import, one
    /// transaction each, so large states take seconds rather than hours of
    /// bcrypt. The daemon must be stopped (one writer per state directory).
    func seed(users: Int, sessions: Int, passwordHash: String, sessionExpiry: Int64) throws {
        let database = try AuthDatabase(path: state + "/authd.sqlite3")
        defer { try? database.close() }
        let now = Int64(Date().timeIntervalSince1970)
        // Emails go on from the users there are: seed0@, seed1@, ...
        let base = try database.rowCounts()["users"] ?? 0
        let tag = "\(base)"
        let ids = try database.importUsers(
            emails: (0..<users).map { "seed\(base + $0)@example.com" }, passwordHash: passwordHash, now: now)
        guard !ids.isEmpty || sessions == 0 else { return }
        try database.importSessions(
            (0..<sessions).map { index in
                // A distinct, never-issued refresh hash per session.
                // Ids shaped as the daemon's own (11 random bytes, base64url).
                AuthDatabase.ImportedSession(
                    id: SecureRandom.identifier(byteCount: 11), userID: ids[index % ids.count],
                    refreshHash: Digest.sha256(Array("seed-\(tag)-\(index)".utf8)))
            }, now: now, expiresAt: sessionExpiry)
        try database.close()
        // The seed's hundreds of megabytes written back now, not while the
        // next start is being timed.
        sync()
    }
}

extension DaemonUnderTest {
    /// Seeds `sessions` live sessions spread over `users` new users, each
    /// with a refresh token signed with the daemon's generated refresh key
    /// (the daemon must have started once and be stopped); returns the tokens.
    func seedRefreshableSessions(users: Int, sessions: Int, passwordHash: String) throws -> [String] {
        var keyBytes = Array(try Data(contentsOf: URL(fileURLWithPath: state + "/keys/refresh-key")))
        if keyBytes.last == 0x0A { keyBytes.removeLast() }
        let key = SigningKey(secret: keyBytes)
        let policy = TokenPolicy(issuer: "authd", audience: "authd-clients", leeway: 30)
        let now = Int64(Date().timeIntervalSince1970)
        let expiry = now + 86_400
        let database = try AuthDatabase(path: state + "/authd.sqlite3")
        defer { try? database.close() }
        let base = try database.rowCounts()["users"] ?? 0
        let tag = "\(base)"
        let ids = try database.importUsers(
            emails: (0..<users).map { "refresh\(base + $0)@example.com" }, passwordHash: passwordHash, now: now)
        var tokens: [String] = []
        var imported: [AuthDatabase.ImportedSession] = []
        for index in 0..<sessions {
            let id = "rs\(tag)x\(index)"
            let userID = ids[index % ids.count]
            let claims = RefreshClaims(
                userID: userID, sessionID: id, tokenID: "seed\(index)", issuedAt: now, expiresAt: expiry)
            let token = JWSCodec.sign(claims: claims.jsonObject(policy: policy), kind: .refresh, key: key)
            imported.append(.init(id: id, userID: userID, refreshHash: Digest.sha256(Array(token.utf8))))
            tokens.append(token)
        }
        try database.importSessions(imported, now: now, expiresAt: expiry)
        return tokens
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
