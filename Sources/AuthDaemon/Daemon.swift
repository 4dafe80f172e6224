import AuthCore
import AuthStore
import CSystemd
import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon's life: start-up (settings, keys, store, socket), signals
/// (SIGTERM/SIGINT stop, SIGHUP reload), the sweeper, and an orderly stop
/// that answers every request already read before exiting 0.
public final class Daemon: @unchecked Sendable {
    private let options: DaemonOptions
    private let logger: Logger
    private let environment: [String: String]
    private let service: AuthService
    /// Set once the socket is bound; signal handling is in place before that.
    private var server: RPCServer?
    private let database: AuthDatabase
    private let keys: KeyStore
    private let events: SecurityLog
    private let stopped = DispatchSemaphore(value: 0)
    private let controlQueue = DispatchQueue(label: "authd.control")
    private var signalSources: [DispatchSourceSignal] = []
    private var timers: [DispatchSourceTimer] = []
    private var stopping = false

    public init(options: DaemonOptions, environment: [String: String], logger: Logger) throws {
        self.options = options
        self.environment = environment
        self.logger = logger
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let settings = try Daemon.loadSettings(options: options, environment: environment, cores: cores)
        let adminGIDs = try Daemon.resolveGroups(settings.adminGroups)

        let listen: RPCServer.Listen
        if let path = options.listenPath {
            listen = .path(path, mode: options.socketMode)
        } else {
            let descriptors = Systemd.listenFileDescriptors()
            guard descriptors.count == 1 else {
                throw StartupError(
                    descriptors.isEmpty
                        ? "no socket to listen on: pass --listen PATH, or start authd through authd.socket"
                        : "systemd passed \(descriptors.count) sockets; authd expects exactly one")
            }
            listen = .inherited(descriptors[0])
        }

        try Daemon.prepareStateDirectory(options.stateDirectory)
        let now = DispatchClock.unixSeconds()
        do {
            keys = try KeyStore(
                stateDirectory: options.stateDirectory,
                credentialsDirectory: environment["CREDENTIALS_DIRECTORY"], environment: environment, now: now,
                retention: settings.accessTTL + settings.clockLeeway, algorithm: settings.algorithm)
        } catch let error as KeyStore.Failure {
            throw StartupError(error.description)
        }
        do {
            database = try AuthDatabase(path: options.stateDirectory + "/authd.sqlite3")
            try database.loadView(now: now)
            // Give the memory the load used for rows back to the system.
            _ = malloc_trim(0)
        } catch {
            throw StartupError("cannot open the database in \(options.stateDirectory): \(error)")
        }
        events = SecurityLog(target: environment["AUTHD_EVENT_TARGET"].flatMap(SecurityLog.Target.init(rawValue:)))
        service = try AuthService(
            settings: settings, adminGIDs: adminGIDs, database: database, keys: keys, events: events, logger: logger,
            clock: { DispatchClock.unixSeconds() })
        // Signal handling first: once the socket answers, a client may send
        // SIGTERM at once, and a signal that arrives between SIG_IGN and the
        // dispatch source would be lost (seen: a benchmark waiting forever).
        startSignalHandling()
        let server: RPCServer
        do {
            server = try RPCServer(
                listen: listen, service: service, maximumLineBytes: settings.maxLineBytes,
                maximumInFlight: settings.maxInFlight, idleTimeout: settings.idleTimeout, threads: cores)
        } catch {
            throw StartupError("cannot listen: \(error)")
        }
        controlQueue.sync { self.server = server }
        startTimers(settings: settings)
        startHeartbeat(group: server.group)
        let counts = database.view.counts
        events.record(
            SecurityEvent(
                .startup,
                "authd \(AuthService.version) started: \(counts.users) users, \(counts.sessions) live sessions, keys from \(keys.source)"
            ))
        logger.info(
            "listening",
            metadata: ["socket": "\(options.listenPath ?? "systemd socket")", "state_dir": "\(options.stateDirectory)"])
        Systemd.notify("READY=1\nSTATUS=Serving: \(counts.users) users, \(counts.sessions) live sessions")
    }

    /// Blocks until the daemon has stopped.
    public func wait() {
        withExtendedLifetime((signalSources, timers)) {
            stopped.wait()
        }
    }

    // MARK: Settings

    static func loadSettings(options: DaemonOptions, environment: [String: String], cores: Int) throws -> Settings {
        var file: JSONObject?
        if let path = options.configPath {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw StartupError("cannot read the config file \(path)")
            }
            guard case .object(let object)? = try? JSONParser.parse(Array(data)) else {
                throw StartupError("the config file \(path) is not a JSON object")
            }
            file = object
        }
        do {
            return try SettingsResolver.resolve(
                flags: options.settingFlags, environment: environment, file: file, cores: cores)
        } catch {
            throw StartupError(error.description)
        }
    }

    static func resolveGroups(_ groups: [String]) throws -> Set<UInt32> {
        var gids = Set<UInt32>()
        for group in groups {
            if let gid = UInt32(group) {
                gids.insert(gid)
            } else if let entry = getgrnam(group) {
                gids.insert(entry.pointee.gr_gid)
            } else {
                throw StartupError("admin_groups: no group named '\(group)'")
            }
        }
        return gids
    }

    static func prepareStateDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw StartupError("cannot create the state directory \(path)")
        }
    }

    // MARK: Signals and timers

    private func startSignalHandling() {
        for signalNumber in [SIGTERM, SIGINT, SIGHUP] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: controlQueue)
            source.setEventHandler { [self] in
                if signalNumber == SIGHUP { reload() } else { stop() }
            }
            source.resume()
            signalSources.append(source)
        }
    }

    private func startTimers(settings: Settings) {
        let sweeper = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "authd.sweeper"))
        let interval = DispatchTimeInterval.seconds(Int(settings.sweepInterval))
        sweeper.schedule(deadline: .now() + interval, repeating: interval)
        sweeper.setEventHandler { [self] in sweep() }
        sweeper.resume()
        timers.append(sweeper)
    }

    /// `WATCHDOG=1` from an event loop (so a stuck loop stops the pings and
    /// systemd restarts the daemon) and a `STATUS=` line every few seconds.
    private func startHeartbeat(group: MultiThreadedEventLoopGroup) {
        let loop = group.next()
        let watchdog = Systemd.watchdogInterval()
        let period = TimeAmount.microseconds(min(watchdog.map { $0 / 2 } ?? 5_000_000, 5_000_000))
        let startedAt = DispatchClock.microseconds()
        let previous = NIOLockedValueBox((answered: 0, at: startedAt))
        loop.scheduleRepeatedTask(initialDelay: .zero, delay: period) { [self] _ in
            let now = DispatchClock.microseconds()
            let answered = service.answered
            let rate = previous.withLockedValue { last -> Double in
                let seconds = Double(now - last.at) / 1e6
                let rate = seconds > 0 ? Double(answered - last.answered) / seconds : 0
                last = (answered, now)
                return rate
            }
            let counts = database.view.counts
            var message = "STATUS=Serving: \(counts.users) users, \(counts.sessions) live sessions, "
            message += "\(Int(rate.rounded())) jobs/s, hash queue \(service.hashPool.depth)"
            if watchdog != nil { message = "WATCHDOG=1\n" + message }
            Systemd.notify(message)
        }
    }

    /// Deletes expired sessions and stale failure counters, in batches.
    public func sweep() {
        let settings = service.settings
        do {
            service.gate.pruneExpired()
            let result = try database.sweep(now: DispatchClock.unixSeconds(), loginWindow: settings.loginWindow)
            if result.sessions > 0 || result.failureCounters > 0 {
                events.record(
                    SecurityEvent(
                        .sessionExpired,
                        "Sweeper deleted \(result.sessions) expired sessions and \(result.failureCounters) stale login counters"
                    ))
            }
            let counts = database.view.counts
            Systemd.notify("STATUS=Serving: \(counts.users) users, \(counts.sessions) live sessions")
        } catch {
            logger.error("sweep failed", metadata: ["cause": "\(error)"])
        }
    }

    private func reload() {
        Systemd.notify("RELOADING=1")
        do {
            let settings = try Daemon.loadSettings(
                options: options, environment: environment, cores: ProcessInfo.processInfo.activeProcessorCount)
            try service.apply(settings: settings, adminGIDs: try Daemon.resolveGroups(settings.adminGroups))
            try keys.reload(
                now: DispatchClock.unixSeconds(), retention: settings.accessTTL + settings.clockLeeway,
                algorithm: settings.algorithm)
            service.verifiedTokens.removeAll()
            logger.info("configuration and keys reloaded")
        } catch {
            logger.error("reload failed; keeping the previous configuration", metadata: ["cause": "\(error)"])
        }
        Systemd.notify("READY=1")
    }

    private func stop() {
        guard !stopping else { return }
        stopping = true
        Systemd.notify("STOPPING=1")
        events.record(SecurityEvent(.shutdown, "authd stopping"))
        // The control queue runs this, so `server` is set unless start-up is
        // still before the bind; then there is nothing to stop accepting.
        let server = self.server
        server?.stopAccepting()
        service.beginShutdown()
        let deadline = DispatchTime.now() + .seconds(Int(service.settings.shutdownTimeout))
        while service.inFlight > 0 && DispatchTime.now() < deadline {
            usleep(5_000)
        }
        if service.inFlight > 0 {
            logger.warning("stopping with requests still in flight", metadata: ["count": "\(service.inFlight)"])
        }
        server?.closeConnections()
        service.drainPools(timeout: 2)
        server?.shutdown()
        do {
            try database.close()
        } catch {
            logger.warning("could not close the database cleanly", metadata: ["cause": "\(error)"])
        }
        logger.info("stopped")
        stopped.signal()
    }
}
