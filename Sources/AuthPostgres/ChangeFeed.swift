import AuthCore
import AuthServiceCore
import Dispatch
import Logging
import PostgresNIO

/// Where a reader of `authd_changes` stands: the last position it applied.
typealias FeedPosition = Int64

/// Keeps one daemon's `LiveView` in step with the database, whichever
/// daemon wrote: it reads the change rows every write inserts, and re-reads
/// the current state of what they name.
///
/// Why this is safe to read by polling:
/// - Positions follow commit order: a write's rows are numbered while it
///   commits, by a deferred trigger that takes the feed's advisory lock
///   first, and the lock is released only once the transaction is visible.
///   So once a position is visible, every smaller one is visible too, and
///   reading `position > cursor` never skips a row. Only authd's own writes
///   take the lock, and only during their COMMIT: no other transaction on
///   the server, and no round trip to a daemon, can hold the feed back.
/// - A row is only a name: the reader re-reads the user or session as it
///   is now, in the same snapshot as the rows, so a batch leaves the view
///   as the database was at one instant; only this reader changes the
///   view, and each read is newer than the last.
/// - A write is answered once a read that began after its commit has
///   caught up (`waitForReadStarted`), so a daemon's own answers and its
///   token checks agree: a revocation answered is a revocation enforced here.
final class ChangeFeed: Sendable {
    private struct State {
        var cursor: FeedPosition
        /// Local writes waiting for a read that began after their commit.
        var waiters:
            [(
                id: Int, after: ContinuousClock.Instant, continuation: CheckedContinuation<Void, Never>,
                deadline: Deadlines.Registration
            )] = []
        var nextWaiterID = 0
        var lastRead: ContinuousClock.Instant
        var sleeper: (id: Int, continuation: CheckedContinuation<Void, Never>)?
        var nextSleeperID = 0
        var pokePending = false
        var stopped = false
        var lastErrorLogged: ContinuousClock.Instant?
        /// A local write committed (or may have: a timeout, a connection
        /// lost at commit) and could not wait for the feed: behind until a
        /// read that started after this instant has caught up.
        var readRequiredAfter: ContinuousClock.Instant?
        /// The signing keys' generation last handed to `keysHandler`.
        var keysGeneration: Int64?
        var keysHandler: (@Sendable (SharedKeySnapshot) -> Bool)?
        /// A generation the handler could not use (logged once).
        var keysRefused: Int64?
    }

    /// The feed's own connection.
    let pool: PostgresConnectionPool
    let view: LiveView
    let logger: Logger
    /// Unix seconds (which sessions a reload finds live).
    let clock: @Sendable () -> Int64
    /// How often the feed is read when no write of this daemon pokes it:
    /// the bound on how late another daemon's revocation reaches this one.
    let interval: Duration
    /// How long one read may take.
    let timeout: Duration
    private let state: Locked<State>
    private let timers = DispatchQueue(label: "authd.feed.timer")

    init(
        pool: PostgresConnectionPool, view: LiveView, logger: Logger, start: FeedPosition, interval: Duration,
        timeout: Duration, clock: @escaping @Sendable () -> Int64
    ) {
        self.pool = pool
        self.timeout = timeout
        self.clock = clock
        self.view = view
        self.logger = logger
        self.interval = interval
        state = Locked(State(cursor: start, lastRead: .now))
    }

    /// How long since the feed was last read successfully.
    var staleness: Duration { ContinuousClock.now - state.withLock { $0.lastRead } }

    var cursor: FeedPosition { state.withLock { $0.cursor } }

    /// Seconds since the last read that caught up, or infinite while behind
    /// a local write: what every token check asks, read under one lock.
    var secondsSinceSync: Double {
        let (lastRead, behind) = state.withLock { ($0.lastRead, $0.readRequiredAfter != nil) }
        if behind { return .infinity }
        let (seconds, attoseconds) = (ContinuousClock.now - lastRead).components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// A local write ended without knowing whether it committed: until
    /// the feed has read past now, the view may lack it.
    func markPossiblyCommittedWrite() {
        let now = ContinuousClock.now
        state.withLock { Self.requireRead(after: now, &$0) }
        poke()
    }

    /// `handler` gets the stored signing keys each time a read finds their
    /// generation changed (a rotation on any daemon), before the read
    /// counts as caught up.
    func onSigningKeysChanged(_ handler: @escaping @Sendable (SharedKeySnapshot) -> Bool) {
        state.withLock { $0.keysHandler = handler }
    }

    /// Sets where reading starts (after the view was loaded).
    func reset(to position: FeedPosition) {
        state.withLock {
            $0.cursor = position
            $0.lastRead = .now
        }
    }

    /// Reads the feed until `stop()`.
    func run() async {
        while !state.withLock({ $0.stopped }) {
            var more = false
            do {
                more = try await readOnce()
            } catch {
                logFailure(error)
                // The server is away: try again soon, not 50 times a second.
                try? await Task.sleep(for: Self.retryDelay)
                continue
            }
            if !more { await sleep(interval) }
        }
        // Stopped: the writes still waiting are answered, and counted as
        // not in the view.
        let waiters = state.withLock { state in
            defer { state.waiters = [] }
            for waiter in state.waiters { Self.requireRead(after: waiter.after, &state) }
            return state.waiters
        }
        for waiter in waiters {
            Deadlines.shared.remove(waiter.deadline)
            waiter.continuation.resume()
        }
    }

    func stop() {
        state.withLock { $0.stopped = true }
        poke()
        pool.close()
    }

    /// How long the feed waits after a failed read.
    static let retryDelay: Duration = .milliseconds(200)

    /// Reads at once (a write of this daemon has committed).
    func poke() {
        let sleeper = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let sleeper = state.sleeper else {
                state.pokePending = true
                return nil
            }
            state.sleeper = nil
            return sleeper.continuation
        }
        sleeper?.resume()
    }

    /// Returns once a read that began after `instant` (a local write's
    /// commit) has caught up: positions follow commit order, so that read
    /// held the write's rows. Or after `timeout`: the write is committed
    /// either way, and the feed then counts as behind until such a read.
    func waitForReadStarted(after instant: ContinuousClock.Instant, timeout: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let id = state.withLock { state -> Int? in
                if state.stopped {
                    Self.requireRead(after: instant, &state)
                    return nil
                }
                state.nextWaiterID += 1
                let id = state.nextWaiterID
                // Deadlines runs its actions outside its own lock, so taking
                // it under this one cannot deadlock.
                let deadline = Deadlines.shared.add(after: timeout) { [self] in
                    let late = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                        guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                        Self.requireRead(after: instant, &state)
                        return state.waiters.remove(at: index).continuation
                    }
                    late?.resume()
                }
                state.waiters.append((id, instant, continuation, deadline))
                return id
            }
            guard id != nil else { return continuation.resume() }
            poke()
        }
    }

    private static func requireRead(after instant: ContinuousClock.Instant, _ state: inout State) {
        state.readRequiredAfter = max(state.readRequiredAfter ?? instant, instant)
    }

    private func sleep(_ interval: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let id = state.withLock { state -> Int? in
                if state.pokePending || state.stopped {
                    state.pokePending = false
                    return nil
                }
                state.nextSleeperID += 1
                state.sleeper = (state.nextSleeperID, continuation)
                return state.nextSleeperID
            }
            guard let id else { return continuation.resume() }
            timers.asyncAfter(deadline: .now() + PostgresStore.dispatchInterval(interval)) { [self] in
                let sleeper = state.withLock { state -> CheckedContinuation<Void, Never>? in
                    guard let sleeper = state.sleeper, sleeper.id == id else { return nil }
                    state.sleeper = nil
                    return sleeper.continuation
                }
                sleeper?.resume()
            }
        }
    }

    /// One batch: the change rows past the cursor, and the current state of
    /// what they name, in one snapshot; or the whole view again when the
    /// sweeper pruned rows this daemon had not read (it was cut off or
    /// stopped for longer than the feed is kept). True when there may be more.
    private func readOnce() async throws -> Bool {
        let from = cursor
        let now = clock()
        // Fresh as of the snapshot, which is taken after this instant.
        let started = ContinuousClock.now
        var result = try await PostgresStore.within(timeout) { [self] in
            try await readBatch(from: from)
        }
        if let result = result {
            view.apply(result.changes)
            if let keys = result.keys, let handler = state.withLock({ $0.keysHandler }) {
                // The handler takes the key store's lock, which a rotation
                // here holds across its own database call: waiting for it
                // on an event loop could hold up that very call.
                let adopted = await StoreTaskExecutor.offLoop { handler(keys) }
                let firstRefusal = state.withLock { state -> Bool in
                    if adopted {
                        state.keysGeneration = keys.generation
                        return false
                    }
                    defer { state.keysRefused = keys.generation }
                    return state.keysRefused != keys.generation
                }
                if firstRefusal {
                    // Read again each time until usable; the old keys stay.
                    logger.error(
                        "the signing keys in the database changed and cannot be used here; signing with the previous ones",
                        metadata: ["generation": "\(keys.generation)"])
                }
            }
        } else {
            logger.warning(
                "the change feed was pruned past this daemon's position: reloading the view",
                metadata: ["position": "\(from)"])
            // A whole view may take longer to read than one call may.
            let limit = max(timeout, .milliseconds(Self.snapshotStatementTimeoutMilliseconds))
            let snapshot = try await PostgresStore.within(limit) { [self] in
                try await readSnapshot(now: now)
            }
            // A whole view (a million sessions) takes a while to build.
            await StoreTaskExecutor.offLoop { [self] in apply(snapshot) }
            result = (snapshot.position, [], false, nil)
        }
        let (position, more) = (result!.position, result!.more)
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.cursor = position
            // In sync only once caught up: a daemon catching up after a cut
            // is not fresh until it has read everything it missed.
            guard !more else { return [] }
            state.lastRead = started
            if let since = state.readRequiredAfter, started > since { state.readRequiredAfter = nil }
            var ready: [CheckedContinuation<Void, Never>] = []
            state.waiters.removeAll { waiter in
                guard started > waiter.after else { return false }
                ready.append(waiter.continuation)
                Deadlines.shared.remove(waiter.deadline)
                return true
            }
            return ready
        }
        for waiter in ready { waiter.resume() }
        return more
    }

    typealias Batch = (
        position: FeedPosition, changes: [LiveView.Change], more: Bool,
        keys: SharedKeySnapshot?
    )

    /// The rows past `from` and the current state of what they name, or
    /// nil if rows past `from` were pruned (the view must be reloaded
    /// whole). One statement, so one snapshot and one round trip: each row
    /// comes with the session it names (if live), the user it names, or
    /// all live sessions of the user, as they are in that snapshot. Most
    /// reads find nothing new and return only the feed's own row.
    private func readBatch(from: FeedPosition) async throws -> Batch? {
        let (keysHandled, knownGeneration) = state.withLock { ($0.keysHandler != nil, $0.keysGeneration) }
        let (read, generation) = try await pool.withConnection { [self] connection -> (Batch?, Int64) in
            let rows = try await connection.rows(of: FeedBatchRead(from: from), logger: logger)
            var position = from
            var changes: [LiveView.Change] = []
            var usersSessionsRead = Set<Int64>()
            var count = 0
            var pruned: FeedPosition = 0
            var generation: Int64 = 0
            for row in rows {
                (pruned, generation) = (row.0, row.1)
                guard let rowPosition = row.2 else { continue }
                count += 1
                position = rowPosition
                if let sessionID = row.4 {
                    if let userID = row.6, let expiresAt = row.7 {
                        changes.append(
                            .addSession(id: sessionID, SessionSnapshot(userID: userID, expiresAt: expiresAt)))
                    } else {
                        changes.append(.removeSession(id: sessionID))
                    }
                } else if let userID = row.3 {
                    if row.5 {
                        // Every row is read in one snapshot, so one list of
                        // the user's live sessions is enough: a batch of
                        // many such rows for one user (each a scan of the
                        // view) costs one scan.
                        guard usersSessionsRead.insert(userID).inserted else { continue }
                        changes.append(.removeSessions(userID: userID, keeping: nil))
                        for (id, expiresAt) in zip(row.13 ?? [], row.14 ?? []) {
                            changes.append(.addSession(id: id, SessionSnapshot(userID: userID, expiresAt: expiresAt)))
                        }
                    } else if let id = row.8, let email = row.9, let role = row.10, let active = row.11,
                        let createdAt = row.12
                    {
                        changes.append(
                            .upsertUser(
                                UserSnapshot(id: id, email: email, role: role, active: active, createdAt: createdAt)))
                    } else {
                        changes.append(.deleteUser(userID))
                    }
                }
            }
            if pruned > from { return (nil, generation) }
            return ((position, changes, count == FeedBatchRead.limit, nil), generation)
        }
        guard var batchRead = read else { return nil }
        if keysHandled && generation != knownGeneration {
            batchRead.keys = try await readKeys()
        }
        return batchRead
    }

    /// The stored signing keys and their generation, read together (a
    /// rotation may commit between the batch's statement and this read).
    private func readKeys() async throws -> SharedKeySnapshot {
        try await pool.withTransaction(logger: logger) { [self] connection in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
            var generation: Int64 = 0
            for try await found in try await connection.query(
                "SELECT keys_generation FROM authd_feed", logger: logger
            ).decode(Int64.self) {
                generation = found
            }
            return SharedKeySnapshot(
                generation: generation, keys: try await PostgresStore.signingKeys(connection, logger: logger))
        }
    }

    /// Everything token checks need, and the feed position it holds
    /// everything up to (positions follow commit order, so every row at or
    /// below the head is in it).
    struct Snapshot: Sendable {
        var position: FeedPosition
        var users: [UserSnapshot]
        var sessions: [(String, SessionSnapshot)]
    }

    /// Reads a `Snapshot` in one repeatable-read transaction. It does not
    /// touch the view: a read given up on by its timeout may still finish,
    /// and must not then overwrite a newer view (`apply` does, after).
    func readSnapshot(now: Int64) async throws -> Snapshot {
        try await pool.withTransaction(logger: logger) { [self] connection in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
            // Every user and session streams out of one statement each: more
            // than `database_timeout` may be fair for millions of them. The
            // feed's connection plans without sequential or bitmap scans
            // (`PostgresStore.feedSessionParameters`); reading every row is
            // what they are for. All three for this transaction only.
            try await connection.query(
                """
                SELECT set_config('statement_timeout', \(String(Self.snapshotStatementTimeoutMilliseconds)), true),
                    set_config('enable_seqscan', 'on', true), set_config('enable_bitmapscan', 'on', true)
                """, logger: logger)
            return try await readSnapshot(connection, now: now)
        }
    }

    /// What a statement of a whole-view read may take (120 s), as the
    /// reload's own limit (`readOnce`).
    static let snapshotStatementTimeoutMilliseconds = 120_000

    /// Replaces the view by `snapshot`.
    func apply(_ snapshot: Snapshot) {
        view.load(userCount: snapshot.users.count, sessionCount: snapshot.sessions.count) { loader in
            for user in snapshot.users { loader.addUser(user) }
            for (id, session) in snapshot.sessions { loader.addSession(id: id, session) }
        }
    }

    private func readSnapshot(_ connection: PostgresConnection, now: Int64) async throws -> Snapshot {
        var position: FeedPosition = 0
        var userCount = 0
        var sessionCount = 0
        let head = try await connection.query(
            """
            SELECT (SELECT coalesce(max(position), 0) FROM authd_changes),
                (SELECT count(*) FROM users), (SELECT count(*) FROM sessions WHERE revoked_at IS NULL)
            """, logger: logger)
        for try await (last, users, sessions) in head.decode((Int64, Int64, Int64).self) {
            position = last
            userCount = Int(users)
            sessionCount = Int(sessions)
        }
        // The pruned rows are gone, but the table's sequence never goes back.
        for try await pruned in try await connection.query(
            "SELECT pruned_through FROM authd_feed", logger: logger
        ).decode(Int64.self) {
            position = max(position, pruned)
        }
        var users: [UserSnapshot] = []
        users.reserveCapacity(userCount)
        for try await (id, email, role, active, createdAt) in try await connection.query(
            "SELECT id, email, role, active, created_at FROM users", logger: logger
        ).decode((Int64, String, String, Bool, Int64).self) {
            users.append(UserSnapshot(id: id, email: email, role: role, active: active, createdAt: createdAt))
        }
        var sessions: [(String, SessionSnapshot)] = []
        sessions.reserveCapacity(sessionCount)
        for try await (id, userID, expiresAt) in try await connection.query(
            "SELECT id, user_id, expires_at FROM sessions WHERE revoked_at IS NULL AND expires_at > \(now)",
            logger: logger
        ).decode((String, Int64, Int64).self) {
            sessions.append((id, SessionSnapshot(userID: userID, expiresAt: expiresAt)))
        }
        return Snapshot(position: position, users: users, sessions: sessions)
    }

    /// One log line per failure streak and at most one a minute.
    private func logFailure(_ error: any Error) {
        let now = ContinuousClock.now
        let log = state.withLock { state -> Bool in
            if state.stopped { return false }  // the pool closing under a last read
            if let last = state.lastErrorLogged, now - last < .seconds(60) { return false }
            state.lastErrorLogged = now
            return true
        }
        if log {
            logger.error(
                "reading the change feed failed", metadata: ["error": "\(PostgresStore.describe(error))"])
        }
    }
}
