import AuthCore
import Foundation

let defaultPassword = "correct horse battery"

/// Every password and token the tests hand to or get from a daemon, so
/// each daemon's outputs can be checked for them when it is torn down.
enum SecretLedger {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var secrets: Set<String> = []

    static func record(_ secret: String) {
        lock.lock()
        secrets.insert(secret)
        lock.unlock()
    }

    static var all: Set<String> {
        lock.lock()
        defer { lock.unlock() }
        return secrets
    }
}

struct Tokens {
    let access: String
    let refresh: String
    let userID: String
}

extension RPCConnection {
    /// Creates a user (the test runs as root, an admin peer) and returns its id.
    @discardableResult
    func createUser(_ email: String, password: String = defaultPassword, role: String = "user") throws -> String {
        SecretLedger.record(password)
        let user = try result(
            "user.create", ["email": .string(email), "password": .string(password), "role": .string(role)])
        guard let id = user.string("id") else { throw DaemonError("user.create gave no id") }
        return id
    }

    func login(_ email: String, password: String = defaultPassword, client: String? = nil) throws -> Tokens {
        var params: JSONObject = ["email": .string(email), "password": .string(password)]
        if let client { params["client"] = .string(client) }
        let result = try result("auth.login", params)
        guard let access = result.string("access_token"), let refresh = result.string("refresh_token"),
            let id = result["user"]?.objectValue?.string("id")
        else { throw DaemonError("login result incomplete") }
        SecretLedger.record(password)
        SecretLedger.record(access)
        SecretLedger.record(refresh)
        return Tokens(access: access, refresh: refresh, userID: id)
    }

    func verify(_ token: String, role: String? = nil) throws -> JSONObject {
        var params: JSONObject = ["token": .string(token)]
        if let role { params["required_role"] = .string(role) }
        return try call("token.verify", params)
    }
}

/// Runs `body` with a started daemon and an open connection; tears down after.
func withDaemon<T>(
    flags: [String: String] = [:], environment: [String: String] = [:],
    _ body: (DaemonProcess, RPCConnection) throws -> T
) throws -> T {
    let daemon = try DaemonProcess.started(flags: flags, environment: environment)
    defer { daemon.tearDown() }
    let connection = try daemon.connect()
    return try body(daemon, connection)
}

/// Runs a Python snippet as another uid (setgid/setuid before connecting),
/// which sends `request` over the socket and returns the answer.
func callAsUser(uid: UInt32, socketPath: String, request: String) throws -> JSONObject {
    guard let answer = try callsAsUser(uid: uid, socketPath: socketPath, lines: [request]).first else {
        throw DaemonError("no answer")
    }
    return answer
}

/// Sends `lines` (pipelined, on one connection) as another uid and returns
/// the answers: `expecting` of them (one per line unless given).
func callsAsUser(uid: UInt32, socketPath: String, lines: [String], expecting: Int? = nil) throws -> [JSONObject] {
    let script = """
        import os, socket, sys
        os.setgroups([]); os.setgid(\(uid)); os.setuid(\(uid))
        count = int(sys.argv[3])
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(sys.argv[1])
        s.sendall(sys.argv[2].encode())
        data = b""
        while data.count(b"\\n") < count:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
        sys.stdout.write(data.decode())
        """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, socketPath, lines.joined(), String(expecting ?? lines.count)]
    let pipe = Pipe()
    process.standardOutput = pipe
    let errors = Pipe()
    process.standardError = errors
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw DaemonError(
            "python peer failed: \(String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
    }
    return try output.split(separator: 0x0A).map { line in
        guard let object = try JSONParser.parse(Array(line)).objectValue else { throw DaemonError("not an object") }
        return object
    }
}

/// Polls `condition` every 5 ms for up to `seconds`: another daemon's change
/// arrives through its feed (how fast is measured in BENCHMARKS.md, not here).
func eventually(within seconds: TimeInterval = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(5_000)
    }
    return try condition()
}
