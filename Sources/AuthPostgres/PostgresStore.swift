import AuthCore
import AuthServiceCore
import Dispatch
import Logging
import NIOCore
import PostgresNIO

#if canImport(Glibc)
    import Glibc
#endif

/// The PostgreSQL store: the `CredentialStore` that several daemons on
/// several hosts share. PostgreSQL does the concurrency: each call is one
/// transaction, and the rows it depends on are locked (`FOR UPDATE`) in
/// one order (user, then sessions), so two daemons racing on one user or
/// one refresh token are serialised by the database, never by a daemon.
/// Each daemon's `LiveView` follows the database through `ChangeFeed`.
public final class PostgresStore: CredentialStore {
    public let view = LiveView()
    /// The connections of calls (reads and writes).
    let pool: PostgresConnectionPool
    let logger: Logger
    let feed: ChangeFeed
    /// Wakes the other daemons' feeds after this one's commits, and this
    /// one's after theirs.
    let wakeup: FeedWakeup
    /// How long a call may take before it fails.
    let timeout: Duration
    private var executor: StoreTaskExecutor { StoreTaskExecutor.shared }
    private let running: Locked<[Task<Void, Never>]>

    public struct Options: Sendable {
        /// Connections in the pool.
        public var poolSize: Int
        /// Seconds a call may take.
        public var timeout: Duration
        /// How often the change feed is read when neither a local write
        /// nor a notification wakes it: the bound on how late another
        /// daemon's change is seen here if its notification is lost.
        public var feedInterval: Duration

        public init(poolSize: Int = 8, timeout: Duration = .seconds(5), feedInterval: Duration = .seconds(1)) {
            self.poolSize = poolSize
            self.timeout = timeout
            self.feedInterval = feedInterval
        }
    }

    /// Connects, migrates the schema (once, whoever else is starting), loads
    /// the view and starts following the feed. `now` decides which sessions
    /// are live.
    /// `password` (the `database-password` credential) overrides the URL's.
    public static func open(
        url: DatabaseURL, password: String? = nil, options: Options = Options(), logger: Logger, now: Int64
    ) async throws -> PostgresStore {
        let configuration = try connectionConfiguration(url: url, password: password, timeout: options.timeout)
        let store = PostgresStore(configuration: configuration, options: options, logger: logger)
        do {
            try await store.start(now: now)
        } catch {
            store.shutdown()
            throw error
        }
        return store
    }

    /// How every connection of the store connects, and the session settings
    /// that bound what a lost client can hold on the server.
    static func connectionConfiguration(url: DatabaseURL, password: String?, timeout: Duration) throws
        -> PostgresConnection.Configuration
    {
        var configuration: PostgresConnection.Configuration
        // No user in the URL: the daemon's own, as libpq does.
        let username = url.username.isEmpty ? processUserName() : url.username
        switch url.endpoint {
        case .tcp(let host, let port):
            var unverified = TLSConfiguration.makeClientConfiguration()
            unverified.certificateVerification = .none
            let tls: PostgresConnection.Configuration.TLS =
                switch url.tls {
                case .disable: .disable
                case .prefer: .prefer(try NIOSSLContext(configuration: unverified))
                case .require: .require(try NIOSSLContext(configuration: unverified))
                case .verifyFull: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
                }
            configuration = .init(
                host: host, port: port, username: username, password: password ?? url.password,
                database: url.database, tls: tls)
        case .socket:
            configuration = .init(
                unixSocketPath: url.socketPath!, username: username, password: password ?? url.password,
                database: url.database)
        }
        let (seconds, attoseconds) = timeout.components
        let milliseconds = max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
        configuration.options.connectTimeout = .milliseconds(Int64(milliseconds))
        configuration.options.additionalStartupParameters = [
            // The server ends a statement that runs past the timeout too.
            ("statement_timeout", "\(milliseconds)"),
            // A daemon that vanished inside a transaction (cut off, killed)
            // must not hold its row locks for ever: the server ends such a
            // transaction, and notices a silent peer through keepalives.
            ("idle_in_transaction_session_timeout", "\(milliseconds * 2)"),
            ("tcp_keepalives_idle", "10"), ("tcp_keepalives_interval", "5"), ("tcp_keepalives_count", "3"),
            // What the row and advisory locks of every write assume, whatever
            // the server's default.
            ("default_transaction_isolation", "read committed"),
            // Short statements only: the JIT compiler can spend seconds on
            // one whose estimate crosses `jit_above_cost` (a fresh table,
            // no statistics yet), which would stall the feed past its timeout.
            ("jit", "off"),
        ]
        if let name = url.applicationName {
            configuration.options.additionalStartupParameters.append(("application_name", name))
        }
        return configuration
    }

    /// The feed connection's own settings. Its one hot statement
    /// (`FeedBatchRead`) is planned once, not on every read: planning cost
    /// more than running it. A plan made once is made from the statistics
    /// of that moment, and on a new database they describe small tables:
    /// the plan then reads the change table and `sessions` whole, on every
    /// read, until the next ANALYZE (on a table growing by thousands of rows
    /// a second, 9,800 rows per read). Without sequential or bitmap scans
    /// (a bitmap scan of the change table reads every row past the
    /// position, to sort them and keep the first 5,000) the plan probes
    /// indexes whatever the statistics say. The whole-view reads turn
    /// sequential scans back on for their own transaction (`ChangeFeed`).
    static let feedSessionParameters: [(String, String)] = [
        ("plan_cache_mode", "force_generic_plan"), ("enable_seqscan", "off"), ("enable_bitmapscan", "off"),
    ]

    /// `open` for callers that are not async (the daemon's start-up).
    public static func openBlocking(
        url: DatabaseURL, password: String? = nil, options: Options = Options(), logger: Logger, now: Int64
    ) throws -> PostgresStore {
        precondition(!StoreTaskExecutor.onEventLoop, "a blocking store call on an event loop could wait for itself")
        let result = Locked<Result<PostgresStore, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task(executorPreference: StoreTaskExecutor.shared) {
            do {
                let store = try await open(url: url, password: password, options: options, logger: logger, now: now)
                result.withLock { $0 = .success(store) }
            } catch {
                result.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }

    private init(configuration: PostgresConnection.Configuration, options: Options, logger: Logger) {
        self.logger = logger
        self.timeout = options.timeout
        pool = PostgresConnectionPool(configuration: configuration, size: options.poolSize, logger: logger)
        running = Locked([])
        // The feed has a connection of its own: writes queued for the pool
        // never delay the reads that keep the view fresh.
        var feedConfiguration = configuration
        feedConfiguration.options.additionalStartupParameters += Self.feedSessionParameters
        feed = ChangeFeed(
            pool: PostgresConnectionPool(configuration: feedConfiguration, size: 1, logger: logger), view: view,
            logger: logger, start: 0, interval: options.feedInterval, timeout: options.timeout,
            clock: { Int64(time(nil)) })
        wakeup = FeedWakeup(configuration: configuration, timeout: options.timeout, logger: logger) { [feed] in
            feed.poke()
        }
    }

    private func start(now: Int64) async throws {
        try await PostgresSchema.migrate(pool, logger: logger)
        let start = try await loadView(now: now)
        feed.reset(to: start)
        let feed = self.feed
        let feedTask = Task(executorPreference: executor) { await feed.run() }
        let wakeup = self.wakeup
        let wakeupTask = Task(executorPreference: executor) { await wakeup.run() }
        running.withLock { $0 += [feedTask, wakeupTask] }
    }

    /// Runs `body` on the store's executor and waits for it (callers that
    /// are not async: the daemon's sweeper).
    public func blocking<Value: Sendable>(_ body: @escaping @Sendable () async throws -> Value) throws -> Value {
        precondition(!StoreTaskExecutor.onEventLoop, "a blocking store call on an event loop could wait for itself")
        let result = Locked<Result<Value, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task(executorPreference: executor) {
            do {
                let value = try await body()
                result.withLock { $0 = .success(value) }
            } catch {
                result.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }

    /// Stops following the feed and closes the connections.
    public func shutdown() {
        feed.stop()
        wakeup.stop()
        for task in running.withLock({ $0 }) { task.cancel() }
        pool.close()
    }

    /// How long since this daemon's view last caught up with the feed:
    /// past `max_staleness` it cannot be trusted.
    public var staleness: Duration { feed.staleness }

    /// Infinite while a write of this daemon is committed but not yet in
    /// its view (see `write`).
    public var secondsSinceSync: Double? { feed.secondsSinceSync }

    /// Fills the view from one snapshot; returns the feed position it
    /// holds everything up to.
    private func loadView(now: Int64) async throws -> FeedPosition {
        let snapshot = try await feed.readSnapshot(now: now)
        // Off the event loop: a million sessions take seconds to build.
        await StoreTaskExecutor.offLoop { [feed] in feed.apply(snapshot) }
        return snapshot.position
    }

    // MARK: Running calls

    /// Runs `body` as a task on the store's executor and completes with its
    /// outcome: a `StoreError` stays itself, a database out of reach (or
    /// too slow: `read` and `write` bound their database work by `timeout`)
    /// is `unavailable`, anything else `failed`.
    func complete<Value: Sendable>(
        _ done: @escaping StoreCompletion<Value>, _ body: @escaping @Sendable () async throws -> Value
    ) {
        Task(executorPreference: executor) {
            do {
                done(.success(try await body()))
            } catch {
                let failure = Self.storeError(error)
                if case .unavailable = failure {
                    self.logger.warning("database unavailable", metadata: ["error": "\(Self.describe(error))"])
                } else if case .failed = failure {
                    self.logger.error("database call failed", metadata: ["error": "\(Self.describe(error))"])
                }
                done(.failure(failure))
            }
        }
    }

    /// `body`, or `unavailable` once `timeout` has passed (the server may be
    /// out of reach with no error yet: a cut network drops packets). The
    /// body is then cancelled and not waited for: the pool closes the
    /// connection of a cancelled lease and frees its slot, and a body that
    /// still does not end (see `PostgresConnectionPool.withConnection`)
    /// cannot hold up the caller.
    static func within<Value: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> Value)
        async throws -> Value
    {
        let waiting = Locked<CheckedContinuation<Value, any Error>?>(nil)
        let work = Locked<Task<Void, Never>?>(nil)
        let takeWaiting: @Sendable () -> CheckedContinuation<Value, any Error>? = {
            waiting.withLock { waiting in
                defer { waiting = nil }; return waiting
            }
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                waiting.withLock { $0 = continuation }
                let deadline = Deadlines.shared.add(after: timeout) {
                    guard let late = takeWaiting() else { return }
                    work.withLock { $0 }?.cancel()
                    late.resume(throwing: StoreError.unavailable("no answer from the database within \(timeout)"))
                }
                let task = Task(executorPreference: StoreTaskExecutor.shared) {
                    let result: Result<Value, any Error>
                    do { result = .success(try await body()) } catch { result = .failure(error) }
                    Deadlines.shared.remove(deadline)
                    takeWaiting()?.resume(with: result)
                }
                work.withLock { $0 = task }
                // A limit already past (a retry at its deadline) may have
                // fired before `work` was set: the body is cancelled here.
                if waiting.withLock({ $0 == nil }) { task.cancel() }
            }
        } onCancel: {
            work.withLock { $0 }?.cancel()
        }
    }

    static func dispatchInterval(_ duration: Duration) -> DispatchTimeInterval {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(max(0, Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)))
    }

    /// A read outside a transaction, within the timeout.
    func read<Value: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> Value) async throws
        -> Value
    {
        do {
            return try await Self.within(timeout) { [pool] in try await pool.withConnection(body) }
        } catch {
            throw Self.unwrap(error)
        }
    }

    /// One write transaction, retried on a serialisation failure or a
    /// deadlock, all within the timeout; the change rows `body` notes are
    /// inserted in it. The call returns once the feed has brought them into
    /// this daemon's view (a read that began after the commit has caught
    /// up). If that takes longer than the timeout, the write is still
    /// committed and is answered as such. The feed then counts as behind
    /// (`secondsSinceSync` is infinite) until such a read:
    /// token checks here fail closed rather than accept a token the write
    /// revoked. A write that fails once its COMMIT may have been sent (a
    /// timeout, a connection lost) is answered `unavailable`, yet may be in:
    /// the feed counts as behind until a read started after the failure.
    ///
    /// With `oneStatement`, `body` runs a single statement outside a
    /// transaction, so the statement is its own transaction (one round trip
    /// where a transaction takes at least three). It must then insert its
    /// change rows itself and say so with `notes.insertedByStatement()`;
    /// one that never inserts any says `changesView: false`, so its failure
    /// does not make token checks distrust the view.
    func write<Value: Sendable>(
        oneStatement: Bool = false, changesView: Bool = true,
        _ body: @escaping @Sendable (PostgresConnection, ChangeNotes) async throws -> Value
    ) async throws -> Value {
        let deadline = ContinuousClock.now + timeout
        var attempt = 0
        while true {
            attempt += 1
            do {
                let committing = Locked(false)
                do {
                    let (value, changed) = try await Self.within(deadline - .now) { [pool, logger] in
                        if oneStatement {
                            return try await pool.withConnection { connection -> (Value, Bool) in
                                // The statement commits as it ends: any
                                // failure may come after it is in.
                                if changesView { committing.withLock { $0 = true } }
                                let notes = ChangeNotes()
                                let value = try await body(connection, notes)
                                return (value, try notes.insertedInStatement())
                            }
                        }
                        return try await pool.withTransaction(logger: logger) { connection -> (Value, Bool) in
                            let notes = ChangeNotes()
                            let value = try await body(connection, notes)
                            let changed = try await notes.insert(connection, logger: logger)
                            // COMMIT comes next: from here a failure may
                            // come after the change is in.
                            if changed { committing.withLock { $0 = true } }
                            return (value, changed)
                        }
                    }
                    if changed {
                        wakeup.notifyOthers()
                        await feed.waitForReadStarted(after: .now, timeout: timeout)
                    }
                    return value
                } catch {
                    // A change that may have committed (its COMMIT was sent,
                    // and no answer came back): the view is not trusted
                    // until the feed has read past now.
                    if committing.withLock({ $0 }) {
                        feed.markPossiblyCommittedWrite()
                        wakeup.notifyOthers()
                    }
                    throw error
                }
            } catch {
                let error = Self.unwrap(error)
                if let state = Self.sqlState(error), state == "40001" || state == "40P01" {
                    if attempt < 5 && ContinuousClock.now < deadline { continue }
                    // Retryable by the client: contention, not a fault.
                    throw StoreError.unavailable("still conflicting after \(attempt) attempts (SQLSTATE \(state))")
                }
                throw error
            }
        }
    }

    /// What a failure means to the service: server errors of the
    /// connection, shutdown and resource classes (08, 57, 53) and every
    /// client-side connection failure mean the database is out of reach.
    static func storeError(_ error: any Error) -> StoreError {
        let error = unwrap(error)
        if let store = error as? StoreError { return store }
        if error is PostgresDecodingError { return .failed(describe(error)) }
        if let psql = error as? PSQLError, let state = psql.serverInfo?[.sqlState] {
            let unreachable = ["08", "57", "53"].contains(String(state.prefix(2)))
            return unreachable ? .unavailable(describe(error)) : .failed(describe(error))
        }
        return .unavailable(describe(error))
    }

    /// The error a transaction's closure threw, rather than the wrapper.
    static func unwrap(_ error: any Error) -> any Error {
        if let prepared = error as? PreparedStatementFailure { return unwrap(prepared.underlying) }
        guard let wrapped = error as? PostgresTransactionError else { return error }
        return unwrap(wrapped.closureError ?? wrapped.beginError ?? wrapped.commitError ?? error)
    }

    static func sqlState(_ error: any Error) -> String? {
        (unwrap(error) as? PSQLError)?.serverInfo?[.sqlState]
    }

    static func processUserName() -> String {
        if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name { return String(cString: name) }
        return "authd"
    }

    /// A failure for the log: the server's message and code when it has
    /// them (`PSQLError` prints a generic text on purpose).
    public static func describe(_ error: any Error) -> String {
        let error = unwrap(error)
        if let psql = error as? PSQLError {
            if let info = psql.serverInfo {
                return "\(info[.message] ?? "server error") (SQLSTATE \(info[.sqlState] ?? "?"))"
            }
            // What the connection failed on ("connection refused", a
            // firewall's "operation not permitted"), not only that it did.
            if let underlying = psql.underlying { return "\(psql.code): \(underlying)" }
            return "\(psql.code)"
        }
        return String(describing: error)
    }
}

/// The change rows a write transaction collects (see `ChangeFeed`).
final class ChangeNotes {
    private var users: [Int64] = []
    private var sessions: [String] = []
    private var allSessions: [Bool] = []
    private var statementInserted = false

    /// A one-statement write inserted its change rows itself.
    func insertedByStatement() { statementInserted = true }

    /// Whether a one-statement write changed anything; rows noted the
    /// usual way would be lost there (no transaction to insert them in).
    func insertedInStatement() throws -> Bool {
        guard users.isEmpty else { throw StoreError.failed("a one-statement write noted change rows it cannot insert") }
        return statementInserted
    }

    func user(_ id: Int64) { append(id, "", false) }
    func session(_ id: String, user: Int64) { append(user, id, false) }
    func allSessions(ofUser id: Int64) { append(id, "", true) }

    private func append(_ user: Int64, _ session: String, _ all: Bool) {
        users.append(user)
        sessions.append(session)
        allSessions.append(all)
    }

    /// Inserts the rows; true if there were any. They are numbered at the
    /// commit (see `PostgresSchema`), so their positions are not known here:
    /// the write waits for a feed read that began after its commit.
    func insert(_ connection: PostgresConnection, logger: Logger) async throws -> Bool {
        guard !users.isEmpty else { return false }
        try await connection.query(
            """
            INSERT INTO authd_changes (user_id, session_id, all_sessions)
            SELECT u, NULLIF(s, ''), a FROM unnest(\(users)::bigint[], \(sessions)::text[], \(allSessions)::boolean[])
                AS t(u, s, a)
            """, logger: logger)
        return true
    }
}

extension ByteBuffer {
    init(hash: [UInt8]) {
        self.init(bytes: hash)
    }

    var bytes: [UInt8] { Array(readableBytesView) }
}
