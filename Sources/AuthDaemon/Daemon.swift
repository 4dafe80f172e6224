import AuthCore
import AuthCrypto
import AuthServiceCore
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
    private let store: DaemonStore
    private let keys: KeyStore
    private let events: SecurityLog
    private let hashQueue: WorkerPool
    private let gate: LoginGate
    /// `sys.backup`'s writer (SQLite only: a shared database is its server's to back up).
    private let backups: SQLiteStateBackup?
    private let stopped = DispatchSemaphore(value: 0)
    private let controlQueue = DispatchQueue(label: "authd.control")
    private var signalSources: [DispatchSourceSignal] = []
    /// Components with a start and a stop, stopped in order at shutdown.
    private var sweeper: PeriodicTask?
    private var eventSummaries: PeriodicTask?
    private var heartbeat: RepeatedTask?
    private var stopping = false
    private var graceSweeper: PeriodicTask?
    /// Held until the process exits: one daemon per state directory.
    private let stateLock: StateDirectoryLock

    public init(options: DaemonOptions, environment: [String: String], logger: Logger) throws {
        // Whatever the caller's umask, nothing authd creates is readable by others.
        umask(0o077)
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

        Daemon.raiseDescriptorLimit(for: settings, logger: logger)
        do {
            let parent = (options.stateDirectory as NSString).deletingLastPathComponent
            if !parent.isEmpty {
                try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            }
            try StateFiles.prepareDirectory(options.stateDirectory, what: "state directory", followLink: true)
            stateLock = try StateDirectoryLock(stateDirectory: options.stateDirectory)
            for suffix in ["", "-wal", "-shm"] {
                try StateFiles.tightenOwnedFile(
                    options.stateDirectory + "/authd.sqlite3" + suffix, what: "database file")
            }
        } catch let error as StateFiles.Untrusted {
            throw StartupError(error.description)
        }
        let now = WallClock.unixSeconds()
        // The key-encryption key first: a shared database needs it, and a
        // daemon that cannot have it should not connect at all.
        var encryptionKey = try Daemon.keyEncryptionKey(
            environment: environment, required: settings.databaseURL != nil)
        // With SQLite and none given: generated once into the state
        // directory, for what is sealed (TOTP secrets, kept successors).
        if encryptionKey == nil, settings.databaseURL == nil {
            encryptionKey = try Daemon.generatedKeyEncryptionKey(stateDirectory: options.stateDirectory)
        }
        store = try DaemonStore.open(
            settings: settings, stateDirectory: options.stateDirectory,
            credentialsDirectory: environment["CREDENTIALS_DIRECTORY"], logger: logger, now: now)
        // SQLite records which key its secrets are sealed under (PostgreSQL
        // does in its own checks): another one would open none of them.
        if let database = store.sqlite, let key = encryptionKey {
            let same: Bool
            do {
                same = try database.adoptKeyEncryptionKey(checkValue: key.checkValue)
            } catch {
                try? store.close()
                throw StartupError("cannot read the database's key check: \(error)")
            }
            guard same else {
                try? store.close()
                throw StartupError(
                    "the key-encryption key given (the credential key-encryption-key or AUTHD_KEY_ENCRYPTION_KEY) is "
                        + "not the one this state directory's second factors are sealed with (by default the one in "
                        + "\(options.stateDirectory)/keys/key-encryption-key): give that one, or reset the second "
                        + "factors first")
            }
        }
        do {
            keys = try KeyStore(
                stateDirectory: options.stateDirectory,
                credentialsDirectory: environment["CREDENTIALS_DIRECTORY"], environment: environment, now: now,
                retention: settings.accessTTL + settings.clockLeeway, algorithm: settings.algorithm,
                shared: store.sharedSigningKeys.flatMap { shared in
                    encryptionKey.map { SharedKeyring(store: shared, encryptionKey: $0) }
                })
        } catch {
            try? store.close()
            if let failure = error as? KeyStore.Failure { throw StartupError(failure.description) }
            throw StartupError("cannot load the signing keys: \(error)")
        }
        // Give the memory the load used for rows back to the system.
        _ = malloc_trim(0)
        let database = store.credentialStore
        events = SecurityLog(target: environment["AUTHD_EVENT_TARGET"].flatMap(SecurityLog.Target.init(rawValue:)))
        // The service's edges, composed here: it builds none of them.
        let clock = ServiceClock(
            now: { WallClock.unixSeconds() }, microseconds: { Int64(MonotonicClock.microseconds()) })
        let operations = LoggerOperationsLog(logger: logger)
        HashMemoryBudget.shared.setLimit(kib: settings.maxHashMemoryMiB * 1024)
        hashQueue = WorkerPool(
            name: "hash", threads: settings.workers, capacity: settings.maxQueue,
            perPeerCapacity: settings.effectiveMaxQueuePerPeer, niceness: 10)
        // Database jobs are shared fairly too: one peer pipelining logouts
        // cannot fill the queue that others' refreshes and admins' revocations
        // need. SQLite's calls block, so they run on workers of their own;
        // PostgreSQL's complete on the store's threads, and its queue only
        // bounds and shares the calls in flight.
        let storeQueue: any JobQueue =
            switch store {
            case .sqlite:
                WorkerPool(
                    name: "store", threads: 2, capacity: settings.maxQueue,
                    perPeerCapacity: settings.effectiveMaxQueuePerPeer, niceness: 0)
            #if canImport(AuthPostgres)
                case .postgres:
                    StoreAdmission(
                        limit: settings.databasePoolSize * 4, capacity: settings.maxQueue,
                        perPeerCapacity: settings.effectiveMaxQueuePerPeer)
            #endif
            }
        do {
            gate = try LoginGate(
                limits: settings.throttleLimits, maximumWaiters: settings.maxQueue, store: database, log: operations,
                clock: clock.now)
        } catch {
            throw StartupError("cannot read the login failure counters: \(error)")
        }
        backups = store.sqlite.map {
            SQLiteStateBackup(
                database: $0, stateDirectory: options.stateDirectory,
                notIncluded: Daemon.keysGivenOutside(
                    environment: environment, credentialsDirectory: environment["CREDENTIALS_DIRECTORY"]))
        }
        service = try AuthService(
            settings: settings, adminGIDs: adminGIDs, store: database, keys: keys, events: events, log: operations,
            hashQueue: hashQueue, storeQueue: storeQueue, gate: gate, clock: clock, sealingKey: encryptionKey,
            backups: backups)
        // Signal handling first: once the socket answers, a client may send
        // SIGTERM at once, and a signal that arrives between SIG_IGN and the
        // dispatch source would be lost (seen: a benchmark waiting forever).
        startSignalHandling()
        // On the control queue, where signals are handled: the bind changes
        // the process umask for a moment, and no reload may create files then.
        let server: RPCServer = try controlQueue.sync {
            let server: RPCServer
            do {
                server = try RPCServer(
                    listen: listen, service: service, maximumLineBytes: settings.maxLineBytes,
                    maximumInFlight: settings.maxInFlight, idleTimeout: settings.idleTimeout,
                    connectionLimits: settings.connectionLimits, threads: cores)
            } catch {
                throw StartupError("cannot listen: \(error)")
            }
            self.server = server
            return server
        }
        startTimers(settings: settings)
        startHeartbeat(group: server.group)
        reportEmailCollisions()
        let counts = store.view.counts
        events.record(
            SecurityEvent(
                .startup,
                "authd \(AuthService.version) started: \(counts.users) users, \(counts.sessions) live sessions, keys from \(keys.source)"
            ))
        logger.info(
            "listening",
            metadata: ["socket": "\(options.listenPath ?? "systemd socket")", "state_dir": "\(options.stateDirectory)"])
        Systemd.notify("READY=1\nSTATUS=Serving: \(counts.users) users, \(counts.sessions) live sessions")
        // After READY: with no hash of a scheme, its count reads every user.
        controlQueue.async { [service] in service.countStoredPasswordSchemes() }
    }

    /// Rows whose emails became one address under NFC normalisation are
    /// kept both (only the NFC spelling can log in); each pair is reported
    /// at every start until an operator resolves it.
    private func reportEmailCollisions() {
        guard let database = store.sqlite else { return }
        do {
            for collision in try database.emailCollisions() {
                let ids = collision.userIDs.map(String.init).joined(separator: ", ")
                let message =
                    "users \(ids) have one email after normalisation; resolve with `authctl user set-email ID NEW` or `authctl user delete ID`"
                logger.warning("\(message)", metadata: ["email": "\(collision.normalized)"])
                events.record(
                    SecurityEvent(
                        .startup, message, userID: collision.userIDs.first, email: collision.normalized,
                        reason: "email_collision"))
            }
            for user in try database.unusableEmails() {
                let message =
                    "user \(user.id) has an email the current rules refuse (invisible or bidirectional characters); change it with `authctl user set-email \(user.id) NEW`"
                logger.warning("\(message)")
                events.record(SecurityEvent(.startup, message, userID: user.id, reason: "email_unusable"))
            }
        } catch {
            logger.error("could not check emails for collisions", metadata: ["cause": "\(error)"])
        }
    }

    /// Blocks until the daemon has stopped.
    public func wait() {
        withExtendedLifetime(signalSources) {
            stopped.wait()
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
        let sweeper = PeriodicTask(name: "sweeper", interval: .seconds(Int(settings.sweepInterval))) { [self] in
            sweep()
        }
        // Summaries of aggregated security events, once their window ends.
        let summaries = PeriodicTask(name: "events", interval: .seconds(1)) { [events] in events.flush() }
        // The successors kept for the refresh grace window are deleted within
        // a few seconds of its end, not at the next sweep.
        let graceSweeper = PeriodicTask(name: "grace", interval: .seconds(Self.graceSweepInterval)) { [self] in
            sweepRefreshGrace()
        }
        controlQueue.sync {
            self.sweeper = sweeper
            self.eventSummaries = summaries
            self.graceSweeper = graceSweeper
        }
        sweeper.start()
        summaries.start()
        graceSweeper.start()
    }

    /// `WATCHDOG=1` from an event loop (so a stuck loop stops the pings and
    /// systemd restarts the daemon) and a `STATUS=` line every few seconds.
    private func startHeartbeat(group: MultiThreadedEventLoopGroup) {
        let loop = group.next()
        let watchdog = Systemd.watchdogInterval()
        let period = TimeAmount.microseconds(min(watchdog.map { $0 / 2 } ?? 5_000_000, 5_000_000))
        let startedAt = MonotonicClock.microseconds()
        let previous = NIOLockedValueBox((answered: 0, at: startedAt))
        let task = loop.scheduleRepeatedTask(initialDelay: .zero, delay: period) { [self] _ in
            let now = MonotonicClock.microseconds()
            let answered = service.answered
            let rate = previous.withLockedValue { last -> Double in
                let seconds = Double(now - last.at) / 1e6
                let rate = seconds > 0 ? Double(answered - last.answered) / seconds : 0
                last = (answered, now)
                return rate
            }
            let counts = store.view.counts
            var message = "STATUS=Serving: \(counts.users) users, \(counts.sessions) live sessions, "
            message += "\(Int(rate.rounded())) jobs/s, hash queue \(hashQueue.depth)"
            if watchdog != nil { message = "WATCHDOG=1\n" + message }
            Systemd.notify(message)
        }
        controlQueue.sync { heartbeat = task }
    }

    /// Seconds between deletions of kept successors past their window.
    static let graceSweepInterval = 5

    /// Deletes the successors kept past their grace window (each row says
    /// until when: the window in force when its token was spent), every
    /// few seconds whatever the window is now, so a reload to 0 or another
    /// host's setting leaves none behind for long.
    private func sweepRefreshGrace() {
        let done = DispatchSemaphore(value: 0)
        store.credentialStore.sweepRefreshGrace(now: WallClock.unixSeconds()) { [logger] result in
            if case .failure(let error) = result {
                logger.warning("deleting kept refresh successors failed", metadata: ["cause": "\(error)"])
            }
            done.signal()
        }
        done.wait()
    }

    /// Deletes expired sessions and stale failure counters, in batches
    /// (on a shared database, only one daemon at a time does).
    public func sweep() {
        let settings = service.settings
        // Which schemes stored hashes are in, for the logins' timing: a
        // migration's last old hash may have been replaced since.
        service.countStoredPasswordSchemes()
        backups?.removeExpired(now: WallClock.unixSeconds())
        do {
            gate.pruneExpired()
            guard let result = try store.sweep(now: WallClock.unixSeconds(), loginWindow: settings.loginWindow)
            else { return }
            if result.sessions > 0 || result.failureCounters > 0 {
                events.record(
                    SecurityEvent(
                        .sessionExpired,
                        "Sweeper deleted \(result.sessions) expired sessions and \(result.failureCounters) stale login counters"
                    ))
            }
            let counts = store.view.counts
            Systemd.notify("STATUS=Serving: \(counts.users) users, \(counts.sessions) live sessions")
        } catch {
            logger.error("sweep failed", metadata: ["cause": "\(error)"])
        }
    }

    private func reload() {
        Systemd.notify("RELOADING=1")
        do {
            var settings = try Daemon.loadSettings(
                options: options, environment: environment, cores: ProcessInfo.processInfo.activeProcessorCount)
            // The store is chosen once, at start.
            if settings.databaseURL != service.settings.databaseURL {
                throw StartupError("database_url cannot change on reload; restart authd to change the store")
            }
            // The hashing pool keeps its size until a restart: the memory
            // bound is checked against the workers running.
            let running = service.settings.workers
            if settings.workers != running {
                logger.warning(
                    "workers changes at the next restart",
                    metadata: ["running": "\(running)", "configured": "\(settings.workers)"])
                settings.workers = running
                try settings.checkHashMemory()
            }
            HashMemoryBudget.shared.setLimit(kib: settings.maxHashMemoryMiB * 1024)
            try service.apply(settings: settings, adminGIDs: try Daemon.resolveGroups(settings.adminGroups))
            // The token policy changed even if the keys fail to reload:
            // no token is served from a check under the old one.
            defer { service.keysChanged() }
            server?.connections.updateLimits(settings.connectionLimits)
            try keys.reload(
                now: WallClock.unixSeconds(), retention: settings.accessTTL + settings.clockLeeway,
                algorithm: settings.algorithm)
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
        // In order: stop accepting, finish what was read, cancel the timers,
        // close the store. The control queue runs this, so `server` is set
        // unless start-up is still before the bind (nothing to stop accepting).
        let server = self.server
        server?.stopAccepting()
        service.beginShutdown()
        // A backup in progress would hold the stop for as long as it copies.
        backups?.cancel()
        if !service.waitUntilIdle(timeout: Double(service.settings.shutdownTimeout)) {
            logger.warning("stopping with requests still in flight", metadata: ["count": "\(service.inFlight)"])
        }
        server?.closeConnections()
        service.drainQueues(timeout: 2)
        heartbeat?.cancel()
        sweeper?.stop()
        eventSummaries?.stop()
        graceSweeper?.stop()
        server?.shutdown()
        events.flush(force: true)
        // No sweep can run now: the store closes last.
        do {
            try store.close()
        } catch {
            logger.warning("could not close the database cleanly", metadata: ["cause": "\(error)"])
        }
        logger.info("stopped")
        stopped.signal()
    }
}
