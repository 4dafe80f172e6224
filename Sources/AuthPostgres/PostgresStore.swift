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
    /// The connection pool (tests reach the database through it too). It
    /// is replaced when it stops recovering (see `superviseConnections`).
    public var client: PostgresClient { pool.withLock { $0.client } }
    private let pool: Locked<(client: PostgresClient, run: Task<Void, Never>?, replacedAt: ContinuousClock.Instant)>
    private let configuration: PostgresClient.Configuration
    let logger: Logger
    let feed: ChangeFeed
    /// How long a call may take before it fails (and a write waits for its
    /// change to reach the view).
    let timeout: Duration
    private var executor: StoreTaskExecutor { StoreTaskExecutor.shared }
    private let running: Locked<[Task<Void, Never>]>

    public struct Options: Sendable {
        /// Connections in the pool.
        public var poolSize: Int
        /// Seconds a call may take.
        public var timeout: Duration
        /// How often the change feed is read without a local write: the
        /// bound on how late another daemon's change is seen here.
        public var feedInterval: Duration

        public init(poolSize: Int = 8, timeout: Duration = .seconds(5), feedInterval: Duration = .milliseconds(20)) {
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
        var configuration: PostgresClient.Configuration
        // No user in the URL: the daemon's own, as libpq does.
        let username = url.username.isEmpty ? Self.processUserName() : url.username
        switch url.endpoint {
        case .tcp(let host, let port):
            var unverified = TLSConfiguration.makeClientConfiguration()
            unverified.certificateVerification = .none
            let tls: PostgresClient.Configuration.TLS =
                switch url.tls {
                case .disable: .disable
                case .prefer: .prefer(unverified)
                case .require: .require(unverified)
                case .verifyFull: .require(.makeClientConfiguration())
                }
            configuration = .init(
                host: host, port: port, username: username, password: password ?? url.password,
                database: url.database, tls: tls)
        case .socket:
            configuration = .init(
                unixSocketPath: url.socketPath!, username: username, password: password ?? url.password,
                database: url.database)
        }
        configuration.options.maximumConnections = max(2, options.poolSize)
        // Kept open and re-established by the pool itself: after the server
        // went away, a call cancelled by its timeout could otherwise leave
        // the pool with no connection attempt pending (seen: writes and the
        // feed waiting for ever once the server was back).
        configuration.options.minimumConnections = 2
        configuration.options.connectTimeout = options.timeout
        // The server ends a statement that runs past the timeout too.
        let milliseconds = Int(options.timeout.components.seconds) * 1000
        configuration.options.additionalStartupParameters = [("statement_timeout", "\(milliseconds)")]
        if let name = url.applicationName {
            configuration.options.additionalStartupParameters.append(("application_name", name))
        }
        let store = PostgresStore(configuration: configuration, options: options, logger: logger)
        do {
            try await store.start(now: now)
        } catch {
            store.shutdown()
            throw error
        }
        return store
    }

    /// `open` for callers that are not async (the daemon's start-up).
    public static func openBlocking(
        url: DatabaseURL, password: String? = nil, options: Options = Options(), logger: Logger, now: Int64
    ) throws -> PostgresStore {
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

    private init(configuration: PostgresClient.Configuration, options: Options, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.timeout = options.timeout
        let client = PostgresClient(configuration: configuration, backgroundLogger: Self.poolLogger(logger))
        pool = Locked((client, nil, .now))
        running = Locked([])
        feed = ChangeFeed(
            client: { [pool] in pool.withLock { $0.client } }, view: view, logger: logger, start: 0,
            interval: options.feedInterval, clock: { Int64(time(nil)) })
        let clientTask = Task(executorPreference: executor) { await client.run() }
        pool.withLock { $0.run = clientTask }
    }

    /// postgres-nio logs every failed connection attempt at info level:
    /// while the server is away that is several lines a second. The store
    /// logs what matters (unavailable, recovered) itself.
    private static func poolLogger(_ logger: Logger) -> Logger {
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .error)
        return quiet
    }

    /// Replaces the pool when the feed has not caught up for three
    /// timeouts: seen with postgres-nio 1.33.2, a pool whose server went
    /// away can stop making connection attempts once the calls waiting for
    /// one were cancelled by their timeouts, and then never recovers. A new
    /// pool costs a reconnect; the old one's waiting calls fail (the feed
    /// retries on the new one).
    private func superviseConnections() async {
        let threshold = timeout * 3
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            guard feed.staleness > threshold else { continue }
            let replaced = pool.withLock { pool -> Task<Void, Never>? in
                guard ContinuousClock.now - pool.replacedAt > threshold else { return nil }
                let client = PostgresClient(
                    configuration: configuration, backgroundLogger: Self.poolLogger(logger))
                let run = Task(executorPreference: executor) { await client.run() }
                let old = pool.run
                pool = (client, run, .now)
                return old
            }
            guard let replaced else { continue }
            logger.warning(
                "the change feed has not caught up for \(threshold): reconnecting with a new pool",
                metadata: ["staleness": "\(feed.staleness)"])
            replaced.cancel()
        }
    }

    private func start(now: Int64) async throws {
        try await PostgresSchema.migrate(client, logger: logger)
        let start = try await loadView(now: now)
        feed.reset(to: start)
        let feed = self.feed
        let feedTask = Task(executorPreference: executor) { await feed.run() }
        let supervisor = Task(executorPreference: executor) { [self] in await superviseConnections() }
        running.withLock { $0 += [feedTask, supervisor] }
    }

    /// Runs `body` on the store's executor and waits for it (callers that
    /// are not async: the daemon's sweeper).
    public func blocking<Value: Sendable>(_ body: @escaping @Sendable () async throws -> Value) throws -> Value {
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
        for task in running.withLock({ $0 }) { task.cancel() }
        pool.withLock { $0.run?.cancel() }
    }

    /// How long since this daemon's view last caught up with the feed:
    /// past `max_staleness` it cannot be trusted.
    public var staleness: Duration { feed.staleness }

    public var secondsSinceSync: Double? {
        let (seconds, attoseconds) = staleness.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// Fills the view from one snapshot; returns the feed position it
    /// holds everything up to.
    private func loadView(now: Int64) async throws -> FeedPosition {
        try await client.withTransaction(logger: logger) { [feed] connection in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
            return try await feed.loadEverything(connection, now: now)
        }
    }

    // MARK: Running calls

    /// Runs `body` as a task on the store's executor and completes with its
    /// outcome within `timeout`: a `StoreError` stays itself, a database
    /// out of reach (or too slow) is `unavailable`, anything else `failed`.
    func complete<Value: Sendable>(
        _ done: @escaping StoreCompletion<Value>, _ body: @escaping @Sendable () async throws -> Value
    ) {
        let timeout = self.timeout
        Task(executorPreference: executor) {
            do {
                done(.success(try await Self.within(timeout, body)))
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
    /// out of reach with no error yet: a cut network drops packets).
    static func within<Value: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> Value)
        async throws -> Value
    {
        try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw StoreError.unavailable("no answer from the database within \(timeout)")
            }
            return value
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

    /// Reads outside a transaction.
    func read<Value: Sendable>(_ body: (PostgresClient) async throws -> Value) async throws -> Value {
        do {
            return try await body(client)
        } catch {
            throw Self.unwrap(error)
        }
    }

    /// One write transaction, retried on a serialisation failure or a
    /// deadlock; the change rows `body` notes are inserted in it, and the
    /// call returns once the feed has brought them into this daemon's view.
    func write<Value: Sendable>(
        _ body: @escaping (PostgresConnection, ChangeNotes) async throws -> Value
    ) async throws -> Value {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let (value, marker) = try await client.withTransaction(logger: logger) {
                    connection -> (Value, FeedPosition?) in
                    let notes = ChangeNotes()
                    let value = try await body(connection, notes)
                    let marker = try await notes.insert(connection, logger: logger)
                    return (value, marker)
                }
                if let marker { await feed.waitUntilApplied(marker, timeout: timeout) }
                return value
            } catch {
                let error = Self.unwrap(error)
                if let state = Self.sqlState(error), state == "40001" || state == "40P01" {
                    if attempt < 5 { continue }
                    // Retryable by the client: contention, not a fault.
                    throw StoreError.unavailable("still conflicting after \(attempt) attempts (SQLSTATE \(state))")
                }
                throw error
            }
        }
    }

    /// The error a transaction's closure threw, rather than the wrapper.
    static func unwrap(_ error: any Error) -> any Error {
        guard let wrapped = error as? PostgresTransactionError else { return error }
        return wrapped.closureError ?? wrapped.beginError ?? wrapped.commitError ?? error
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

    func user(_ id: Int64) { append(id, "", false) }
    func session(_ id: String, user: Int64) { append(user, id, false) }
    func allSessions(ofUser id: Int64) { append(id, "", true) }

    private func append(_ user: Int64, _ session: String, _ all: Bool) {
        users.append(user)
        sessions.append(session)
        allSessions.append(all)
    }

    /// Inserts the rows, taking the feed lock first (held to the commit:
    /// positions follow commit order); the position of the last, or nil.
    func insert(_ connection: PostgresConnection, logger: Logger) async throws -> FeedPosition? {
        guard !users.isEmpty else { return nil }
        try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.feedLock))", logger: logger)
        let rows = try await connection.query(
            """
            WITH added AS (
                INSERT INTO authd_changes (user_id, session_id, all_sessions)
                SELECT u, NULLIF(s, ''), a FROM unnest(\(users)::bigint[], \(sessions)::text[], \(allSessions)::boolean[])
                    AS t(u, s, a)
                RETURNING position)
            SELECT max(position) FROM added
            """, logger: logger)
        var marker: FeedPosition?
        for try await position in rows.decode(Int64.self) { marker = position }
        return marker
    }
}

extension ByteBuffer {
    init(hash: [UInt8]) {
        self.init(bytes: hash)
    }

    var bytes: [UInt8] { Array(readableBytesView) }
}
