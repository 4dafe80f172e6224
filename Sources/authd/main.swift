import ArgumentParser
import AuthCore
import AuthDaemon
import Foundation
import Logging

/// `authd --listen PATH --state-dir DIR [--config FILE]`, plus one flag per
/// setting in kebab-case (`--bcrypt-cost 12`).
struct AuthdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authd",
        abstract: "Local authentication daemon: JSON-RPC 2.0 over a Unix socket.",
        discussion: """
            Without --listen, authd takes its socket from systemd (authd.socket).
            Settings come, highest first, from flags, AUTHD_* variables, the config
            file (JSON, snake_case keys) and the defaults.
            """)

    @Option(help: "Listen on this Unix socket path (development). A stale socket file is replaced.")
    var listen: String?

    @Option(help: "Octal mode of the socket created with --listen.")
    var socketMode: String = "0660"

    @Option(help: "State directory: database and generated keys.")
    var stateDir: String

    @Option(help: "Config file (a JSON object with snake_case setting names).")
    var config: String?

    @Option var bcryptCost: String?
    @Option var accessTtl: String?
    @Option var refreshTtl: String?
    @Option var issuer: String?
    @Option var audience: String?
    @Option var algorithm: String?
    @Option var loginMaxFailures: String?
    @Option var clientMaxFailures: String?
    @Option var loginWindow: String?
    @Option var sweepInterval: String?
    @Option var adminUids: String?
    @Option var adminGroups: String?
    @Option var workers: String?
    @Option var maxQueue: String?
    @Option var clockLeeway: String?
    @Option var maxLineBytes: String?
    @Option var maxInFlight: String?
    @Option var shutdownTimeout: String?
    @Option var idleTimeout: String?

    var settingFlags: [String: String] {
        let pairs: [(String, String?)] = [
            ("bcrypt_cost", bcryptCost), ("access_ttl", accessTtl), ("refresh_ttl", refreshTtl),
            ("issuer", issuer), ("audience", audience), ("algorithm", algorithm),
            ("login_max_failures", loginMaxFailures), ("client_max_failures", clientMaxFailures),
            ("login_window", loginWindow), ("sweep_interval", sweepInterval), ("admin_uids", adminUids),
            ("admin_groups", adminGroups), ("workers", workers), ("max_queue", maxQueue),
            ("clock_leeway", clockLeeway), ("max_line_bytes", maxLineBytes), ("max_in_flight", maxInFlight),
            ("shutdown_timeout", shutdownTimeout), ("idle_timeout", idleTimeout),
        ]
        var flags: [String: String] = [:]
        for (name, value) in pairs { if let value { flags[name] = value } }
        return flags
    }

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = environment["AUTHD_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            return handler
        }
        let logger = Logger(label: "authd")
        guard let mode = mode_t(socketMode, radix: 8), mode <= 0o777 else {
            throw ValidationError("--socket-mode must be an octal mode such as 0660")
        }
        let options = DaemonOptions(
            listenPath: listen, socketMode: mode, stateDirectory: stateDir, configPath: config,
            settingFlags: settingFlags)
        do {
            let daemon = try Daemon(options: options, environment: environment, logger: logger)
            daemon.wait()
        } catch let error as StartupError {
            FileHandle.standardError.write(Data("authd: error: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}

AuthdCommand.main()
