import ArgumentParser
import Foundation

/// Measures a real authd (started on a temporary socket and state directory)
/// against its targets; see BENCHMARKS.md.
struct AuthBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authbench", abstract: "Benchmarks a real authd over its Unix socket.")

    @Option(help: "The authd binary to start.")
    var daemon: String = ".build/release/authd"

    @Flag(help: "A smoke run of seconds (short durations, small states, bcrypt cost 10).")
    var quick = false

    @Option(help: "Seconds per measured run (default 5, or 0.3 with --quick).")
    var seconds: Double?

    @Option(help: "The access-token algorithm of the daemon: HS256 or EdDSA.")
    var algorithm = "HS256"

    @Option(
        help:
            "Only these scenarios: transport, verify, login, argon2id, fairness, refresh, cold-start, memory, sweeper, revocation."
    )
    var only: [String] = []

    @Option(help: "An empty PostgreSQL database: the revocation scenario runs two daemons on it.")
    var databaseURL: String?

    @Option(help: "A PostgreSQL server: verify and refresh also run on it (a new database each), beside SQLite.")
    var databaseServer: String?

    @Option(help: "Users, each with one live session, in the memory scenario (default 100,000).")
    var users: Int?

    @Option(help: "The daemon's refresh_grace (seconds) in the refresh scenario (default: not passed, 0).")
    var refreshGrace: Int?

    @Flag(help: "The daemon is an older build without the per-peer and session settings (for before figures).")
    var baseline = false

    @Option(help: .hidden) var floodAsUid: UInt32?
    @Option(help: .hidden) var floodSocket: String?
    @Option(help: .hidden) var floodDepth: Int = 200

    func run() throws {
        if let floodAsUid, let floodSocket {
            try LoginFlood(uid: floodAsUid, socket: floodSocket, depth: floodDepth, seconds: seconds ?? 5).run()
            return
        }
        var scenarios = Scenarios(binary: daemon, quick: quick, cost: quick ? 10 : 12)
        scenarios.duration = seconds
        scenarios.algorithm = algorithm
        scenarios.baseline = baseline
        scenarios.databaseURL = databaseURL
        scenarios.databaseServer = databaseServer
        scenarios.users = users
        scenarios.refreshGrace = refreshGrace
        defer { scenarios.dropDatabases() }
        let all = [
            "transport", "verify", "login", "argon2id", "fairness", "refresh", "cold-start", "memory", "sweeper",
            "revocation",
        ]
        for name in all where only.isEmpty || only.contains(name) {
            switch name {
            case "transport": try scenarios.transport()
            case "verify": try scenarios.verify()
            case "login": try scenarios.logins()
            case "argon2id": try scenarios.passwordSchemes()
            case "fairness": try scenarios.fairness()
            case "refresh": try scenarios.refreshes()
            case "cold-start": try scenarios.coldStart()
            case "memory": try scenarios.memory()
            case "sweeper": try scenarios.sweeper()
            case "revocation": try scenarios.revocation()
            default: break
            }
        }
        let errors = scenarios.report.results.map(\.0.errors).reduce(0, +)
        let empty = scenarios.report.results.filter { $0.0.requests == 0 }.map(\.0.name)
        print("authbench: \(scenarios.report.results.count) runs, \(errors) errors")
        if errors > 0 || !empty.isEmpty { throw ExitCode(1) }
    }
}

AuthBench.main()
