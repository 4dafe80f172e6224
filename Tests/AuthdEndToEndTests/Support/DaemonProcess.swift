import AuthCore
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The real `authd` binary, started on a temporary socket and state
/// directory, talked to over the real Unix socket.
final class DaemonProcess: @unchecked Sendable {
    let directory: String
    let socketPath: String
    let stateDirectory: String
    let stderrPath: String
    private(set) var process: Process?
    private var arguments: [String]
    private var environment: [String: String]

    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["AUTHD_BINARY"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/authd").path
    }

    static func makeTemporaryDirectory() -> String {
        var template = Array("/tmp/authd-test-XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        chmod(path, 0o755)
        return path
    }

    /// Settings are passed as flags (`["access-ttl": "5"]`), bcrypt cost 10
    /// unless given, so the suite stays fast.
    /// What every daemon of the tests runs with: no inherited settings,
    /// except ThreadSanitizer's options (its suppression file of known
    /// false positives). ASan's are not passed: the test runner turns its
    /// own leak check off, the daemons keep theirs.
    /// The key-encryption key of the tests' daemons on PostgreSQL (a
    /// test of a mismatch passes its own).
    static let keyEncryptionKey = "6b656b2d666f722d617574686420746573747320302d39612d6620212a2b2c2e"

    static var baseEnvironment: [String: String] {
        var environment = ["PATH": "/usr/bin:/bin", "AUTHD_EVENT_TARGET": "stderr"]
        environment["TSAN_OPTIONS"] = ProcessInfo.processInfo.environment["TSAN_OPTIONS"]
        return environment
    }

    init(flags: [String: String] = [:], environment: [String: String] = [:], directory: String? = nil) {
        self.directory = directory ?? DaemonProcess.makeTemporaryDirectory()
        socketPath = self.directory + "/authd.sock"
        stateDirectory = self.directory + "/state"
        stderrPath = self.directory + "/stderr.log"
        var flags = flags
        if flags["bcrypt-cost"] == nil { flags["bcrypt-cost"] = "10" }
        arguments = ["--listen", socketPath, "--state-dir", stateDirectory, "--socket-mode", "0666"]
        for (name, value) in flags.sorted(by: { $0.key < $1.key }) { arguments += ["--\(name)", value] }
        var env = DaemonProcess.baseEnvironment
        if flags["database-url"] != nil { env["AUTHD_KEY_ENCRYPTION_KEY"] = DaemonProcess.keyEncryptionKey }
        env.merge(environment) { $1 }
        self.environment = env
    }

    /// Starts the daemon and waits until its socket answers.
    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DaemonProcess.binary)
        process.arguments = arguments
        process.environment = environment
        if !FileManager.default.fileExists(atPath: stderrPath) {
            _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        handle.seekToEndOfFile()
        process.standardError = handle
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if !process.isRunning {
                throw DaemonError("authd exited with \(process.terminationStatus) at start: \(stderr)")
            }
            if let connection = try? RPCConnection(path: socketPath) {
                connection.close()
                return
            }
            usleep(10_000)
        }
        throw DaemonError("authd did not open its socket in time: \(stderr)")
    }

    static func started(flags: [String: String] = [:], environment: [String: String] = [:]) throws -> DaemonProcess {
        let daemon = DaemonProcess(flags: flags, environment: environment)
        try daemon.start()
        return daemon
    }

    /// Runs the binary to completion (for start-up errors) and returns its
    /// exit status and stderr.
    static func runToExit(arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String) {
        let directory = makeTemporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments.map { $0.replacingOccurrences(of: "$DIR", with: directory) }
        var env = baseEnvironment
        if arguments.contains("--database-url") { env["AUTHD_KEY_ENCRYPTION_KEY"] = keyEncryptionKey }
        env.merge(environment) { $1 }
        process.environment = env
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            throw DaemonError("authd did not exit")
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        try? FileManager.default.removeItem(atPath: directory)
        return (process.terminationStatus, output)
    }

    func connect() throws -> RPCConnection { try RPCConnection(path: socketPath) }

    var pid: Int32 { process?.processIdentifier ?? 0 }

    /// Sends `signal` and waits for the exit; returns the exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 20) -> Int32 {
        guard let process, process.isRunning else { return process?.terminationStatus ?? -1 }
        kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        return process.terminationStatus
    }

    var isRunning: Bool { process?.isRunning ?? false }

    var terminationReason: Process.TerminationReason? { process.map { $0.terminationReason } }

    var stderr: String {
        (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    }

    /// Security events written so far (JSON lines on stderr).
    var events: [JSONObject] {
        stderr.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("{") else { return nil }
            return (try? JSONParser.parse(Array(line.utf8)))?.objectValue
        }
    }

    func events(named name: String) -> [JSONObject] {
        events.filter { $0["AUTHD_EVENT"] == .string(name) }
    }

    /// Stops the daemon, checks that nothing it wrote (stderr, the database
    /// and its WAL) holds a password or token the tests used, and removes
    /// its directory.
    func tearDown() {
        stop(signal: SIGKILL)
        var written = [Data(stderr.utf8)]
        for file in ["authd.sqlite3", "authd.sqlite3-wal"] {
            if let data = FileManager.default.contents(atPath: stateDirectory + "/" + file) { written.append(data) }
        }
        // Under `swift test --sanitize=…` the daemon is instrumented too.
        // The report goes into the issue: the directory is removed below.
        let output = stderr
        for report in ["ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer"] {
            guard let start = output.range(of: report) else { continue }
            Issue.record("authd reported \(report):\n\(output[start.lowerBound...].prefix(6_000))")
        }
        for secret in SecretLedger.all {
            let needle = Data(secret.utf8)
            if written.contains(where: { $0.range(of: needle) != nil }) {
                Issue.record("a password or token the tests used was written by authd in \(directory)")
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

struct DaemonError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
