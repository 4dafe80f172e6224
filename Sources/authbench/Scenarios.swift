import AuthCore
import AuthCrypto
import Foundation

/// The measured figures of one benchmark run.
struct Scenarios {
    let binary: String
    let quick: Bool
    let cost: Int
    var report = Report()

    var duration: Double? = nil
    /// The daemon's signing algorithm for access tokens.
    var algorithm = "HS256"
    var seconds: Double { duration ?? (quick ? 0.3 : 5) }
    /// The daemon predates the security-review settings (a before figure):
    /// pass none of them.
    var baseline = false
    /// An empty PostgreSQL database for the revocation scenario.
    var databaseURL: String?
    var sessionCapFlags: [String] { baseline ? [] : ["--max-sessions-per-user", "1000000"] }
    /// A PostgreSQL server: the verify and refresh scenarios also run on it,
    /// beside SQLite, each daemon on a new database.
    var databaseServer: String?
    /// `--refresh-grace` for the refresh scenario's daemons; nil: not passed.
    var refreshGrace: Int?
    /// Users (each with one live session) of the memory scenario.
    var users: Int?
    static let password = "benchmark password"
    /// The databases `newDatabase` made, dropped at the end of the run.
    let createdDatabases = Mutexed<[String]>([])

    /// A new, empty database on `databaseServer` (psql), as a URL.
    func newDatabase() throws -> String {
        guard let server = databaseServer else { throw BenchError("no --database-server") }
        let name = "authbench_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        guard Self.psql(server, "CREATE DATABASE \(name)") else { throw BenchError("psql could not create \(name)") }
        createdDatabases.withLock { $0.append(name) }
        // The server's URL with the new database's name in its path.
        let parts = server.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let base = parts[0]
        guard let slash = base.lastIndex(of: "/") else { throw BenchError("not a URL: \(server)") }
        return base[..<slash] + "/" + name + (parts.count > 1 ? "?" + parts[1] : "")
    }

    /// Drops the run's databases (its daemons have stopped). Each one left
    /// would cost the server's autovacuum a visit every minute, and a later
    /// run's figures the time it takes.
    func dropDatabases() {
        guard let server = databaseServer else { return }
        for name in createdDatabases.withLock({ $0 }) where !Self.psql(server, "DROP DATABASE IF EXISTS \(name)") {
            print("authbench: could not drop database \(name)")
        }
    }

    /// Runs one psql command on `server`; true if it succeeded.
    static func psql(_ server: String, _ command: String) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = ["-X", "-q", "-v", "ON_ERROR_STOP=1", server, "-c", command]
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// The stores the side-by-side scenarios run on: SQLite, and PostgreSQL
    /// when a server is given (a label and the daemon's flags).
    func stores() throws -> [(label: String, flags: [String])] {
        var stores: [(String, [String])] = [("", [])]
        if databaseServer != nil { stores.append((" (PostgreSQL)", ["--database-url", try newDatabase()])) }
        return stores
    }

    func verifyRequest(token: String) -> @Sendable (Int, Int) -> [UInt8] {
        let prefix = Array("{\"jsonrpc\":\"2.0\",\"id\":".utf8)
        let suffix = Array(",\"method\":\"token.verify\",\"params\":{\"token\":\"\(token)\"}}\n".utf8)
        return { _, id in prefix + Array(String(id).utf8) + suffix }
    }

    /// A daemon with one user, logged in; returns it and an access token.
    /// One user logs in over and over in the login scenarios, so the session
    /// cap is lifted: the verified token's session must stay live.
    func daemonWithSession(_ flags: [String] = []) throws -> (DaemonUnderTest, String) {
        let daemon = try DaemonUnderTest(binary: binary)
        try daemon.start(
            ["--bcrypt-cost", String(cost), "--algorithm", algorithm] + sessionCapFlags + flags)
        _ = try call(
            daemon.socket, "user.create",
            ["email": .string("bench@example.com"), "password": .string(Scenarios.password)])
        let login = try call(
            daemon.socket, "auth.login",
            ["email": .string("bench@example.com"), "password": .string(Scenarios.password)])
        return (daemon, login["access_token"]!.stringValue!)
    }

    mutating func transport() throws {
        let path = NSTemporaryDirectory() + "authbench-echo-\(getpid()).sock"
        let server = try EchoServer(path: path)
        defer { server.stop() }
        let (daemon, token) = try daemonWithSession()
        daemon.remove()
        let request = verifyRequest(token: token)
        report.add(
            try runLoad(
                name: "echo, 1 connection", socket: path, connections: 1, depth: 1, seconds: seconds, request: request))
        report.add(
            try runLoad(
                name: "echo, 16 connections x 8 deep", socket: path, connections: 16, depth: 8, seconds: seconds,
                request: request))
    }

    mutating func verify() throws {
        for (label, flags) in try stores() {
            let (daemon, token) = try daemonWithSession(flags)
            defer { daemon.remove() }
            let request = verifyRequest(token: token)
            _ = try runLoad(
                name: "warm-up", socket: daemon.socket, connections: 4, depth: 4, seconds: seconds / 2,
                request: request)
            report.add(
                try runLoad(
                    name: "token.verify, 1 connection\(label)", socket: daemon.socket, connections: 1, depth: 1,
                    seconds: seconds, request: request),
                target: "p50 <= 50 us")
            report.add(
                try runLoad(
                    name: "token.verify, 16 connections x 8 deep\(label)", socket: daemon.socket, connections: 16,
                    depth: 8, seconds: seconds, request: request),
                target: ">= 100,000/s")
        }
    }

    /// One bcrypt hash at `cost` on one thread, in seconds (best of three).
    func hashSeconds() throws -> Double {
        var best = Double.infinity
        for _ in 0..<3 {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try Bcrypt.hash(Array("x".utf8), cost: cost)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return best
    }

    /// Logins of `bench@example.com`, or with `perConnection` of
    /// `bench<connection>@example.com`, one account per connection.
    func loginRequest(perConnection: Bool = false) -> @Sendable (Int, Int) -> [UInt8] {
        let prefix = Array("{\"jsonrpc\":\"2.0\",\"id\":".utf8)
        let password = Scenarios.password
        return { connection, id in
            let email = perConnection ? "bench\(connection)@example.com" : "bench@example.com"
            return prefix + Array(String(id).utf8)
                + Array(
                    ",\"method\":\"auth.login\",\"params\":{\"email\":\"\(email)\",\"password\":\"\(password)\"}}\n"
                        .utf8)
        }
    }

    /// The login figures' target: 95 % of the machine's limit, and the
    /// share `result` reached.
    static func loginTarget(_ result: RunResult, limit: Double) -> String {
        ">= 95 % of \(String(format: "%.1f", limit))/s (\(String(format: "%.0f", result.throughput / limit * 100)) %)"
    }

    mutating func logins() throws {
        let limit = Double(ProcessInfo.processInfo.activeProcessorCount) / (try hashSeconds())
        report.note(
            "machine limit at cost \(cost): \(ProcessInfo.processInfo.activeProcessorCount) cores / \(String(format: "%.1f", 1000 / limit * Double(ProcessInfo.processInfo.activeProcessorCount))) ms per hash = \(String(format: "%.1f", limit)) logins/s"
        )
        let (daemon, token) = try daemonWithSession()
        defer { daemon.remove() }
        let loginSeconds = quick ? 1 : seconds * 2
        let logins = try runLoad(
            name: "auth.login, 8 connections", socket: daemon.socket, connections: 8, depth: 1, seconds: loginSeconds,
            request: loginRequest())
        report.add(logins, target: Self.loginTarget(logins, limit: limit))
        if databaseServer != nil {
            // The same on PostgreSQL: each login also reserves and ends its
            // place in the shared limits, and opens its session, there.
            let (shared, _) = try daemonWithSession(["--database-url", try newDatabase()])
            defer { shared.remove() }
            let onShared = try runLoad(
                name: "auth.login, 8 connections (PostgreSQL)", socket: shared.socket, connections: 8, depth: 1,
                seconds: loginSeconds, request: loginRequest())
            report.add(onShared, target: Self.loginTarget(onShared, limit: limit))
            // One account admits only as many attempts at once as it has
            // failures left (5): on a shared store each one's place is
            // given back and taken again through the database. The same
            // load spread over one account per connection:
            for connection in 0..<8 {
                _ = try call(
                    shared.socket, "user.create",
                    ["email": .string("bench\(connection)@example.com"), "password": .string(Scenarios.password)])
            }
            let spread = try runLoad(
                name: "auth.login, 8 connections, 8 accounts (PostgreSQL)", socket: shared.socket, connections: 8,
                depth: 1, seconds: loginSeconds, request: loginRequest(perConnection: true))
            report.add(spread, target: Self.loginTarget(spread, limit: limit))
        }

        let verifyAlone = try runLoad(
            name: "token.verify alone, 4 x 500/s", socket: daemon.socket, connections: 4, depth: 1,
            seconds: loginSeconds, perConnectionRate: 500, request: verifyRequest(token: token))
        report.add(verifyAlone)
        var storm = RunResult(name: "")
        var during = RunResult(name: "")
        let group = DispatchGroup()
        let stormBox = Mutexed<RunResult?>(nil)
        let socket = daemon.socket
        let loginRequest = self.loginRequest()
        group.enter()
        Thread.detachNewThread {
            let result = try? runLoad(
                name: "auth.login storm, 8 connections", socket: socket, connections: 8, depth: 1,
                seconds: loginSeconds, request: loginRequest)
            stormBox.withLock { $0 = result }
            group.leave()
        }
        usleep(100_000)
        during = try runLoad(
            name: "token.verify during the storm, 4 x 500/s", socket: daemon.socket, connections: 4, depth: 1,
            seconds: loginSeconds - 0.2, perConnectionRate: 500, request: verifyRequest(token: token))
        group.wait()
        storm = stormBox.withLock { $0 } ?? storm
        report.add(during, target: "p99 <= 2 x \(verifyAlone.percentile(0.99)) us")
        report.add(storm, target: ">= 85 % of the limit (\(String(format: "%.0f", storm.throughput / limit * 100)) %)")
    }

    /// Refreshes on 8 connections, each rotating through 256 sessions (2,048
    /// in all), so no session comes near `refresh_rate_limit` (10/s) and the
    /// figure measures the rotation itself. The sessions are seeded with
    /// refresh tokens signed with the daemon's own key.
    mutating func refreshes() throws {
        let grace = refreshGrace.map { ["--refresh-grace", String($0)] } ?? []
        let label = refreshGrace.map { ", refresh_grace \($0)" } ?? ""
        try refreshes(label: label, flags: [], grace: grace)
        if databaseServer != nil {
            try refreshes(
                label: label + " (PostgreSQL)", flags: ["--database-url", newDatabase()], grace: grace)
        }
    }

    /// Refreshes over many sessions. SQLite's are seeded into the file;
    /// PostgreSQL's through logins (fewer: each costs a hash), enough that
    /// the per-session rate limit (10/s) stays above the rate measured.
    mutating func refreshes(label: String, flags: [String], grace: [String]) throws {
        let daemon = try DaemonUnderTest(binary: binary)
        defer { daemon.remove() }
        let connections = 8
        let seeded: [String]
        let perConnection: Int
        if flags.isEmpty {
            try daemon.start(["--bcrypt-cost", "10"])
            daemon.stop()
            perConnection = quick ? 16 : 256
            let hash = try Bcrypt.hash(Array(Scenarios.password.utf8), cost: 10)
            seeded = try daemon.seedRefreshableSessions(
                users: 64, sessions: connections * perConnection, passwordHash: hash)
            try daemon.start(["--bcrypt-cost", "10"] + grace)
        } else {
            try daemon.start(["--bcrypt-cost", "10"] + sessionCapFlags + flags + grace)
            perConnection = quick ? 8 : 96
            var tokens: [String] = []
            for user in 0..<64 {
                _ = try call(
                    daemon.socket, "user.create",
                    ["email": .string("refresh\(user)@example.com"), "password": .string(Scenarios.password)])
            }
            for index in 0..<(connections * perConnection) {
                let login = try call(
                    daemon.socket, "auth.login",
                    ["email": .string("refresh\(index % 64)@example.com"), "password": .string(Scenarios.password)])
                tokens.append(login["refresh_token"]!.stringValue!)
            }
            seeded = tokens
        }
        let results = Mutexed<RunResult>(
            RunResult(name: "auth.refresh, 8 connections x \(perConnection) sessions each\(label)"))
        let group = DispatchGroup()
        let duration = seconds
        let socket = daemon.socket
        let started = DispatchTime.now().uptimeNanoseconds
        for index in 0..<connections {
            group.enter()
            let first = Array(seeded[(index * perConnection)..<((index + 1) * perConnection)])
            Thread.detachNewThread {
                defer { group.leave() }
                var tokens = first
                var local = RunResult(name: "")
                guard let connection = try? PipelinedConnection(path: socket) else { return }
                let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(duration * 1e9)
                var id = 1
                while DispatchTime.now().uptimeNanoseconds < deadline {
                    let slot = id % tokens.count
                    let start = DispatchTime.now().uptimeNanoseconds
                    connection.send(
                        Array(
                            "{\"jsonrpc\":\"2.0\",\"id\":\(id),\"method\":\"auth.refresh\",\"params\":{\"refresh_token\":\"\(tokens[slot])\"}}\n"
                                .utf8))
                    id += 1
                    guard let line = connection.readLines().first,
                        let next = (try? JSONParser.parse(Array(line)))?.objectValue?["result"]?.objectValue?[
                            "refresh_token"]?.stringValue
                    else {
                        local.errors += 1
                        break
                    }
                    tokens[slot] = next
                    local.requests += 1
                    local.latencies.append(Int((DispatchTime.now().uptimeNanoseconds - start) / 1000))
                }
                results.withLock { $0.merge(local) }
            }
        }
        group.wait()
        var total = results.withLock { $0 }
        total.seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        // Issue 12's target for PostgreSQL, the earlier one for SQLite.
        report.add(total, target: flags.isEmpty ? ">= 5,000/s" : ">= 3,000/s")
    }

    /// Fair queuing: a second peer (uid 65534, a child process) keeps 200
    /// logins queued while this peer (root) logs in one at a time. Target:
    /// root's logins finish within 3 hash times at p99, and all logins
    /// together run at >= 95 % of the machine's limit.
    mutating func fairness() throws {
        let hash = try hashSeconds()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let limit = Double(cores) / hash
        let daemon = try DaemonUnderTest(binary: binary)
        defer { daemon.remove() }
        try daemon.start(["--bcrypt-cost", String(cost), "--socket-mode", "0666"] + sessionCapFlags)
        for email in ["bench@example.com", "flood@example.com"] {
            _ = try call(
                daemon.socket, "user.create", ["email": .string(email), "password": .string(Scenarios.password)])
        }
        let runSeconds = quick ? 2.0 : seconds * 3
        let flood = Process()
        flood.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        flood.arguments = [
            "--flood-as-uid", "65534", "--flood-socket", daemon.socket, "--flood-depth", "200",
            "--seconds", String(runSeconds + 1),
        ]
        let output = Pipe()
        flood.standardOutput = output
        try flood.run()
        // Let the flood fill the queue first.
        usleep(useconds_t(min(1.0, 20 * hash) * 1e6))
        var mine = RunResult(name: "root's logins while uid 65534 keeps 200 queued")
        let connection = try PipelinedConnection(path: daemon.socket)
        let started = DispatchTime.now().uptimeNanoseconds
        let deadline = started + UInt64(runSeconds * 1e9)
        var id = 1
        let request = loginRequest()
        while DispatchTime.now().uptimeNanoseconds < deadline {
            let start = DispatchTime.now().uptimeNanoseconds
            connection.send(request(0, id))
            id += 1
            guard let line = connection.readLines().first,
                (try? JSONParser.parse(Array(line)))?.objectValue?["result"] != nil
            else {
                mine.errors += 1
                break
            }
            mine.requests += 1
            mine.latencies.append(Int((DispatchTime.now().uptimeNanoseconds - start) / 1000))
        }
        mine.seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        flood.waitUntilExit()
        let floodFigures = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Double($0) }
        guard floodFigures.count == 2, floodFigures[1] > 0 else { throw BenchError("the flood peer reported nothing") }
        let (floodAnswered, floodSeconds) = (floodFigures[0], floodFigures[1])
        let p99Hashes = Double(mine.percentile(0.99)) / 1e6 / hash
        report.add(mine, target: "p99 <= 3 hash times (\(String(format: "%.1f", p99Hashes)) x \(Int(hash * 1000)) ms)")
        let total = floodAnswered / floodSeconds + mine.throughput
        report.note(
            "fairness: all logins \(String(format: "%.1f", total))/s = \(String(format: "%.0f", total / limit * 100)) % of the limit \(String(format: "%.1f", limit))/s (flood \(Int(floodAnswered)) answered)   target >= 95 %"
        )
    }

    mutating func coldStart() throws {
        var fresh: [Double] = []
        var existing: [Double] = []
        for _ in 0..<(quick ? 2 : 7) {
            let daemon = try DaemonUnderTest(binary: binary)
            fresh.append(try daemon.start())
            daemon.stop()
            existing.append(try daemon.start())
            daemon.remove()
        }
        let median = { (values: [Double]) in values.sorted()[values.count / 2] * 1000 }
        report.note(
            "cold start, exec to first answer: \(String(format: "%.1f", median(existing))) ms median with existing state (\(String(format: "%.1f", median(fresh))) ms on first start, keys and schema created)   target <= 100 ms"
        )
    }

    /// The view's memory and start-up at `users` users with one live
    /// session each, and `token.verify` there against a 1,000-user daemon.
    mutating func memory() throws {
        let count = users ?? (quick ? 2_000 : 100_000)
        let hash = try Bcrypt.hash(Array(Scenarios.password.utf8), cost: 10)
        var latencies: [RunResult] = []
        for users in [min(1_000, count), count] {
            let daemon = try DaemonUnderTest(binary: binary)
            defer { daemon.remove() }
            try daemon.start(["--bcrypt-cost", "10"])
            daemon.stop()
            try daemon.seed(
                users: users, sessions: users, passwordHash: hash,
                sessionExpiry: Int64(Date().timeIntervalSince1970) + 86_400)
            let startSeconds = try daemon.start(["--bcrypt-cost", "10"])
            // Before any request: what the view and start-up left behind.
            let resident = daemon.residentBytes
            let token = try call(
                daemon.socket, "auth.login",
                ["email": .string("seed\(users / 2)@example.com"), "password": .string(Scenarios.password)])[
                    "access_token"]!.stringValue!
            let run = try runLoad(
                name: "token.verify with \(users) users + \(users) sessions, 1 connection", socket: daemon.socket,
                connections: 1, depth: 1, seconds: seconds, request: verifyRequest(token: token))
            latencies.append(run)
            if users == count {
                report.note(
                    "RSS with \(users) users + \(users) sessions: \(resident / 1_048_576) MiB after start (\(daemon.residentBytes / 1_048_576) MiB after the runs), exec to first answer \(String(format: "%.2f", startSeconds)) s   target <= 160 MiB, <= 1.0 s at 1,000,000"
                )
            }
        }
        for run in latencies { report.add(run, target: "p50 within 10 %") }
    }

    mutating func sweeper() throws {
        let count = quick ? 2_000 : 100_000
        let hash = try Bcrypt.hash(Array(Scenarios.password.utf8), cost: 10)
        let daemon = try DaemonUnderTest(binary: binary)
        defer { daemon.remove() }
        try daemon.start(["--bcrypt-cost", "10"])
        daemon.stop()
        try daemon.seed(users: 1_000, sessions: count, passwordHash: hash, sessionExpiry: 1000)
        try daemon.start(["--bcrypt-cost", "10", "--sweep-interval", "1"])
        let token = try call(
            daemon.socket, "auth.login",
            ["email": .string("seed1@example.com"), "password": .string(Scenarios.password)])["access_token"]!
            .stringValue!
        let during = try runLoad(
            name: "token.verify while the sweeper deletes \(count) expired sessions", socket: daemon.socket,
            connections: 1, depth: 1, seconds: quick ? 1.5 : 4, request: verifyRequest(token: token))
        let after = try runLoad(
            name: "token.verify after the sweep", socket: daemon.socket, connections: 1, depth: 1, seconds: seconds,
            request: verifyRequest(token: token))
        report.add(during)
        report.add(after)
    }
}

/// Collects figures and prints them as a table.
struct Report {
    private(set) var lines: [String] = []
    private(set) var results: [(RunResult, String)] = []

    mutating func add(_ result: RunResult, target: String = "") {
        results.append((result, target))
        let figures = String(
            format: "%9.0f/s  p50 %7d  p90 %7d  p99 %7d  max %8d us  errors %d", result.throughput,
            result.percentile(0.5), result.percentile(0.9), result.percentile(0.99), result.latencies.max() ?? 0,
            result.errors)
        lines.append(result.name.padding(toLength: 62, withPad: " ", startingAt: 0) + figures + "  " + target)
        print(lines.last!)
    }

    mutating func note(_ text: String) {
        lines.append(text)
        print(text)
    }
}
