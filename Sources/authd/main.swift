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
            files (JSON, snake_case keys: --config-dir's authd.conf and
            authd.conf.d/*.conf, then --config) and the defaults. Setting flags:
            \(SettingsResolver.names.map { "--" + SettingsResolver.flagName($0) + " VALUE" }.joined(separator: " "))


            `authd migrate --from-sqlite STATE_DIR --database-url URL` copies a
            single-host deployment into an empty PostgreSQL database (`authd migrate --help`).
            """)

    @Option(help: "Listen on this Unix socket path (development). A stale socket file is replaced.")
    var listen: String?

    @Option(help: "Octal mode of the socket created with --listen.")
    var socketMode: String = "0660"

    @Option(help: "State directory: database and generated keys.")
    var stateDir: String?

    @Option(help: "Config file (a JSON object with snake_case setting names); it must exist.")
    var config: String?

    @Option(
        help:
            "Config directory: DIR/authd.conf if it exists, then DIR/authd.conf.d/*.conf in name order, each replacing the values it names (before --config)."
    )
    var configDir: String?

    @Flag(help: "Print the effective settings and where each came from (secrets masked), then exit.")
    var printConfig = false

    /// The setting flags, taken off the command line before parsing (their
    /// list is `SettingsResolver.definitions`, not a copy here).
    nonisolated(unsafe) static var settingFlags: [String: String] = [:]

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
            listenPath: listen, socketMode: mode, stateDirectory: stateDir ?? "", configPath: config,
            configDirectory: configDir, settingFlags: AuthdCommand.settingFlags)
        do {
            if printConfig {
                let (settings, sources) = try Daemon.loadSettingsWithSources(
                    options: options, environment: environment, cores: ProcessInfo.processInfo.activeProcessorCount)
                print(SettingsResolver.describe(settings, sources: sources))
                return
            }
            guard stateDir != nil else { throw ValidationError("--state-dir is required") }
            let daemon = try Daemon(options: options, environment: environment, logger: logger)
            daemon.wait()
        } catch let error as StartupError {
            FileHandle.standardError.write(Data("authd: error: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// `authd migrate --from-sqlite STATE_DIR --database-url URL`: moves a
/// single-host deployment onto an empty PostgreSQL database.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy a single-host deployment (its state directory) into an empty PostgreSQL database.",
        discussion: """
            The database is the one database_url names (--database-url, AUTHD_DATABASE_URL or
            the config file); the key-encryption key is needed as for the daemon. Stop the
            state directory's authd first.
            """)

    @Option(name: .customLong("from-sqlite"), help: "The state directory to copy (holding authd.sqlite3 and keys/).")
    var fromSQLite: String

    @Option(help: "Config file (a JSON object with snake_case setting names).")
    var config: String?

    @Option(help: "Config directory, as the daemon reads it (authd.conf, then authd.conf.d/*.conf).")
    var configDir: String?

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = environment["AUTHD_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
            return handler
        }
        do {
            let summary = try SQLiteMigration.run(
                stateDirectory: fromSQLite, configPath: config, configDirectory: configDir,
                settingFlags: AuthdCommand.settingFlags,
                environment: environment, logger: Logger(label: "authd"))
            FileHandle.standardError.write(Data("authd: \(summary)\n".utf8))
        } catch let error as StartupError {
            FileHandle.standardError.write(Data("authd: error: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// `authd restore --from BACKUP --state-dir DIR`: puts a backup that
/// `authctl backup` collected into a state directory, after checking it.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Check a backup (authctl backup) and restore it into an empty state directory.",
        discussion: """
            Every file is checked against the backup's MANIFEST.json (size and SHA-256) and the
            database with SQLite's integrity check before anything is copied. A state directory
            that already has a database or key files is refused: move it aside first. Stop
            authd (authd.socket and authd.service) while restoring. The state directory must
            be the restoring user's own: as root, restore into a new folder, which systemd
            gives to the service's user at its next start.
            """)

    @Option(help: "The backup folder (the DEST of authctl backup).")
    var from: String

    @Option(help: "The state directory to restore into (created if missing; must hold no database or keys).")
    var stateDir: String?

    @Flag(help: "Only check the backup; restore nothing.")
    var check = false

    func validate() throws {
        if !check && stateDir == nil { throw ValidationError("--state-dir is required (or --check)") }
    }

    func run() throws {
        do {
            let summary = try StateRestore.run(backupDirectory: from, stateDirectory: stateDir, checkOnly: check)
            FileHandle.standardError.write(Data("authd: \(summary)\n".utf8))
        } catch let error as StateRestore.Failure {
            FileHandle.standardError.write(Data("authd: error: \(error.description)\n".utf8))
            throw ExitCode(1)
        } catch {
            FileHandle.standardError.write(Data("authd: error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

do {
    let split = try SettingsResolver.extractFlags(from: Array(CommandLine.arguments.dropFirst()))
    AuthdCommand.settingFlags = split.flags
    // Its own command, not a subcommand: ArgumentParser would require the
    // daemon's --state-dir of it too.
    if split.remaining.first == "migrate" {
        MigrateCommand.main(Array(split.remaining.dropFirst()))
    } else if split.remaining.first == "restore" {
        RestoreCommand.main(Array(split.remaining.dropFirst()))
    } else {
        AuthdCommand.main(split.remaining)
    }
} catch {
    FileHandle.standardError.write(Data("authd: error: \(error.description)\n".utf8))
    exit(64)
}
