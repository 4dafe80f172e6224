import AuthCore
import AuthCrypto
import Foundation

extension Scenarios {
    /// argon2id at OWASP's parameters next to bcrypt: the machine's limit
    /// for each, logins at the argon2id limit, and (during a migration, with
    /// hashes of both schemes stored) the time of a refused login for an
    /// unknown email, a known bcrypt-hashed and a known argon2id-hashed one.
    mutating func passwordSchemes() throws {
        let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
        let argon2 = PasswordHashing.owaspArgon2
        var best = Double.infinity
        for _ in 0..<3 {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try Argon2id.hash(Array("x".utf8), parameters: argon2)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let argon2Limit = cores / best
        let bcryptSeconds = try hashSeconds()
        report.note(
            "machine limit, argon2id \(argon2): \(Int(cores)) cores / \(String(format: "%.1f", best * 1000)) ms per hash = \(String(format: "%.1f", argon2Limit)) logins/s; bcrypt at cost \(cost): \(String(format: "%.1f", bcryptSeconds * 1000)) ms = \(String(format: "%.1f", cores / bcryptSeconds)) logins/s"
        )

        let (daemon, _) = try daemonWithSession(["--password-scheme", "argon2id"])
        defer { daemon.remove() }
        let logins = try runLoad(
            name: "auth.login, 8 connections, argon2id", socket: daemon.socket, connections: 8, depth: 1,
            seconds: quick ? 1 : seconds * 2, request: loginRequest())
        report.add(
            logins,
            target:
                ">= 95 % of \(String(format: "%.1f", argon2Limit))/s (\(String(format: "%.0f", logins.throughput / argon2Limit * 100)) %)"
        )

        // A migration: one account hashed by bcrypt before the switch, one
        // by argon2id after it. Refused logins only (a right password would
        // move the bcrypt hash), with the failure limits out of the way.
        let migrating = try DaemonUnderTest(binary: binary)
        defer { migrating.remove() }
        let limits = ["--login-max-failures", "1000000", "--client-max-failures", "1000000"]
        _ = try migrating.start(["--bcrypt-cost", String(cost)] + limits)
        _ = try call(
            migrating.socket, "user.create",
            ["email": .string("old@example.com"), "password": .string(Scenarios.password)])
        migrating.stop()
        _ = try migrating.start(["--bcrypt-cost", String(cost), "--password-scheme", "argon2id"] + limits)
        _ = try call(
            migrating.socket, "user.create",
            ["email": .string("new@example.com"), "password": .string(Scenarios.password)])
        usleep(200_000)  // the daemon's count of the schemes stored hashes are in
        let emails = ["nobody@example.com", "old@example.com", "new@example.com"]
        var times: [[Double]] = [[], [], []]
        let connection = try PipelinedConnection(path: migrating.socket)
        for round in 0..<(quick ? 3 : 25) {
            for (index, email) in emails.enumerated() {
                let request: JSONObject = [
                    "jsonrpc": .string("2.0"), "id": .int(Int64(round)), "method": .string("auth.login"),
                    "params": .object(["email": .string(email), "password": .string("not the password")]),
                ]
                let start = DispatchTime.now().uptimeNanoseconds
                connection.send(JSONWriter.encode(.object(request)) + [0x0A])
                guard let line = connection.readLines().first, JSONParser.isError(Array(line)) else {
                    throw BenchError("a refused login was not refused")
                }
                times[index].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
        }
        let medians = times.map { $0.sorted()[$0.count / 2] }
        report.note(
            "refused login during a migration, median of \(times[0].count): unknown email \(String(format: "%.1f", medians[0])) ms, known bcrypt-hashed \(String(format: "%.1f", medians[1])) ms, known argon2id-hashed \(String(format: "%.1f", medians[2])) ms"
        )
    }
}

extension JSONParser {
    /// Whether an answer line is an error.
    static func isError(_ line: [UInt8]) -> Bool {
        (try? JSONParser.parse(line).objectValue?["error"]) != nil
    }
}
