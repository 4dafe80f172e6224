import AuthServiceCore
import Logging
import NIOCore
import PostgresNIO

/// authd's pool of PostgreSQL connections, used instead of postgres-nio's
/// `PostgresClient`: with postgres-nio 1.33.2 that pool could stop trying
/// to connect after its server came back, once the calls waiting for a
/// connection had been cancelled by their timeouts. That happened in about
/// half the runs of the database-restart test, and only a daemon restart
/// fixed it. This pool is small enough to check by reading:
/// - A lease takes an idle connection. If there is none, it opens one while
///   fewer than `size` are open or opening. Otherwise it waits until one
///   comes back or a slot frees. A waiter that is cancelled leaves the queue.
/// - A connection goes back to the pool only if its use ended cleanly:
///   success, or an error the server reported on a connection that is still
///   usable. Anything else closes it, so a connection cut mid-query is
///   never handed out again.
/// - A lease cancelled while it holds a connection (the caller's timeout)
///   closes that connection and frees its slot at once, without waiting for
///   the body: a query waiting on a network that drops packets, or one that
///   never completes, cannot hold the pool.
/// - Nothing is remembered about failures. While the server is away each
///   lease tries to connect and fails fast, and the first lease after the
///   server is back gets a connection.
final class PostgresConnectionPool: Sendable {
    private struct State {
        var idle: [PostgresConnection] = []
        /// Idle, leased and being opened: never above `size`.
        var open = 0
        /// A waiter is resumed with a connection, or with nil: a slot is
        /// now its own to open.
        var waiters: [(id: Int, continuation: CheckedContinuation<PostgresConnection?, any Error>)] = []
        var nextWaiterID = 0
        var nextConnectionID = 0
        var closed = false
    }

    let size: Int
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let state = Locked(State())

    init(configuration: PostgresConnection.Configuration, size: Int, logger: Logger) {
        self.configuration = configuration
        self.size = max(1, size)
        self.logger = logger
    }

    /// A pool dropped without `close()` (a store never shut down) still
    /// closes its idle connections; leased ones are closed as they return.
    deinit {
        for connection in state.withLock({ $0.idle }) { Self.discard(connection) }
    }

    /// Connections open or being opened, and idle ones (for tests).
    var counts: (open: Int, idle: Int) { state.withLock { ($0.open, $0.idle.count) } }

    /// Runs `body` with a connection of the pool.
    func withConnection<Value>(_ body: (PostgresConnection) async throws -> Value) async throws -> Value {
        let connection = try await lease()
        // Whoever ends the lease first (the body, or its cancellation)
        // returns the slot; the other does nothing.
        let ending = Locked(false)
        let endsLease: @Sendable () -> Bool = {
            ending.withLock { ended in
                defer { ended = true }; return !ended
            }
        }
        do {
            let value = try await withTaskCancellationHandler {
                try await body(connection)
            } onCancel: {
                // Not waiting for the body: seen with postgres-nio 1.33.2, a
                // query sent as the server closed the connection may never
                // complete, and closing it again does not end it. The slot
                // is free at once; a body that hangs holds only itself.
                guard endsLease() else { return }
                Self.discard(connection)
                releaseSlot()
            }
            if endsLease() { giveBack(connection, reusable: !Task.isCancelled) }
            return value
        } catch {
            if endsLease() { giveBack(connection, reusable: !Task.isCancelled && Self.leavesConnectionUsable(error)) }
            throw error
        }
    }

    /// `body` in a transaction (`BEGIN` … `COMMIT`, `ROLLBACK` if it throws).
    func withTransaction<Value: Sendable>(
        logger: Logger, _ body: (PostgresConnection) async throws -> Value
    ) async throws -> Value {
        try await withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection in try await body(connection) }
        }
    }

    /// Closes every idle connection, and each leased one when it comes back;
    /// leases from now on fail.
    func close() {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            defer {
                state.open -= state.idle.count
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        for connection in idle { Self.discard(connection) }
        for waiter in waiters { waiter.continuation.resume(throwing: StoreError.unavailable("the store is closed")) }
    }

    // MARK: Leases

    private enum Lease {
        case use(PostgresConnection)
        case connect
        case wait
    }

    private func lease() async throws -> PostgresConnection {
        let next = try state.withLock { state throws -> Lease in
            guard !state.closed else { throw StoreError.unavailable("the store is closed") }
            return Self.take(&state, size: size) ?? .wait
        }
        switch next {
        case .use(let connection): return connection
        case .connect: return try await connect()
        case .wait:
            if let handed = try await waitForConnection() { return handed }
            return try await connect()
        }
    }

    /// Under the lock: an idle connection, or a slot (counted in `open`),
    /// or nil when neither is free. Idle connections the server closed are
    /// dropped (there are no waiters while any connection is idle).
    private static func take(_ state: inout State, size: Int) -> Lease? {
        while let connection = state.idle.popLast() {
            if !connection.isClosed { return .use(connection) }
            state.open -= 1
        }
        guard state.open < size else { return nil }
        state.open += 1
        return .connect
    }

    /// Waits for a connection given back, or for a slot (nil). Whether one
    /// is free is checked again under the lock that queues the waiter: one
    /// given back between `lease`'s look and the queueing is not missed.
    private func waitForConnection() async throws -> PostgresConnection? {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let now = state.withLock { state -> Result<PostgresConnection?, any Error>? in
                    if state.closed { return .failure(StoreError.unavailable("the store is closed")) }
                    // Cancelled before it queued: the handler found nothing.
                    if Task.isCancelled { return .failure(CancellationError()) }
                    switch Self.take(&state, size: size) {
                    case .use(let connection): return .success(connection)
                    case .connect: return .success(nil)
                    case .wait, nil:
                        state.waiters.append((id, continuation))
                        return nil
                    }
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<PostgresConnection?, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Opens a connection in a slot already counted in `open`.
    private func connect() async throws -> PostgresConnection {
        let id = state.withLock { state in
            state.nextConnectionID += 1
            return state.nextConnectionID
        }
        do {
            return try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
        } catch {
            releaseSlot()
            throw error
        }
    }

    private func giveBack(_ connection: PostgresConnection, reusable: Bool) {
        enum Outcome {
            case kept
            case handed(CheckedContinuation<PostgresConnection?, any Error>)
            case dropped
        }
        let outcome = state.withLock { state -> Outcome in
            guard reusable, !state.closed, !connection.isClosed else { return .dropped }
            guard state.waiters.isEmpty else { return .handed(state.waiters.removeFirst().continuation) }
            state.idle.append(connection)
            return .kept
        }
        switch outcome {
        case .kept: return
        case .handed(let waiter): waiter.resume(returning: connection)
        case .dropped:
            Self.discard(connection)
            releaseSlot()
        }
    }

    /// A slot is free: the first waiter may open a connection in it.
    private func releaseSlot() {
        let waiter = state.withLock { state -> CheckedContinuation<PostgresConnection?, any Error>? in
            guard !state.closed, !state.waiters.isEmpty else {
                state.open -= 1
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: nil)
    }

    /// Closes a connection, keeping it alive until it is closed
    /// (postgres-nio asserts that a connection is closed when it goes).
    /// Also for the connections authd keeps outside a pool (`FeedWakeup`).
    static func discard(_ connection: PostgresConnection) {
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// Whether a connection is still fit for the next lease after `error`:
    /// yes for errors of authd's own (the transaction was rolled back) and
    /// for errors the server reported in a statement; no when a rollback
    /// or commit failed, or the connection itself failed.
    static func leavesConnectionUsable(_ error: any Error) -> Bool {
        var error = error
        if let transaction = error as? PostgresTransactionError {
            guard transaction.rollbackError == nil, transaction.commitError == nil else { return false }
            guard let inner = transaction.closureError ?? transaction.beginError else { return false }
            error = inner
        }
        if error is PreparedStatementFailure { return false }
        if error is StoreError || error is PostgresDecodingError { return true }
        guard let psql = error as? PSQLError, psql.code == .server else { return false }
        // An error that ended the session (FATAL: the server is shutting
        // down, an idle transaction timed out) leaves nothing to reuse.
        let severity = psql.serverInfo?[.severity] ?? ""
        let state = psql.serverInfo?[.sqlState] ?? ""
        return !["FATAL", "PANIC"].contains(severity) && !state.hasPrefix("08") && !state.hasPrefix("57")
    }
}
