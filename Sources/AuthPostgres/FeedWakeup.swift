import AuthServiceCore
import Logging
import PostgresNIO

/// Wakes the change feeds of the other daemons sharing the database, and
/// this daemon's when another commits: `LISTEN` on a connection of its own,
/// and one `NOTIFY` after this daemon's commits.
///
/// Only a wake-up. The feed's position is the truth, and a feed still
/// polls (`PostgresStore.Options.feedInterval`): a notification lost with a
/// connection, or sent while this daemon was away, delays a change by one
/// poll at most. After each (re)connection the feed is woken once, so
/// whatever was committed while no one listened is read at once.
///
/// `NOTIFY` takes a cluster-wide lock while its transaction commits, so
/// notifications are coalesced: at most one every `minimumInterval` per
/// daemon, the commits made meanwhile covered by the next one. Each
/// carries the sender's random name, so a daemon is not woken by its own
/// (its own commits reach its feed directly).
final class FeedWakeup: Sendable {
    static let channel = "authd_feed"
    /// Bounds this daemon's notifications to 200 a second under load, and
    /// delays another daemon's view of a change by at most this much more.
    static let minimumInterval: Duration = .milliseconds(5)

    private struct State {
        var connection: PostgresConnection?
        var sending = false
        var sendAgain = false
        var stopped = false
        var connectionID = 0
    }

    /// How often the listening connection is asked a question: a
    /// connection cut without a word (a dropped network) ends no
    /// notification stream, and would otherwise go unnoticed for as long as
    /// TCP takes to give up.
    static let heartbeatInterval: Duration = .seconds(10)

    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    /// What a statement on the connection may take.
    private let timeout: Duration
    private let wake: @Sendable () -> Void
    private let state = Locked(State())
    /// This daemon's name in its notifications' payload: random, not
    /// secret (hexadecimal, so it needs no quoting).
    private let sender = String(UInt64.random(in: .min ... .max), radix: 16)

    /// `wake` is called for every notification and after every
    /// (re)connection.
    init(
        configuration: PostgresConnection.Configuration, timeout: Duration, logger: Logger,
        wake: @escaping @Sendable () -> Void
    ) {
        self.configuration = configuration
        self.timeout = timeout
        self.logger = logger
        self.wake = wake
    }

    /// Listens until `stop()`, reconnecting after a loss.
    func run() async {
        while !state.withLock({ $0.stopped }) && !Task.isCancelled {
            do {
                try await listenOnce()
            } catch {
                logger.debug("the feed's wake-up connection ended", metadata: ["error": "\(String(reflecting: error))"])
            }
            if state.withLock({ $0.stopped }) { break }
            try? await Task.sleep(for: ChangeFeed.retryDelay)
        }
    }

    /// One connection, until it fails, stops answering, or `stop()`.
    private func listenOnce() async throws {
        let id = state.withLock { state in
            state.connectionID += 1
            return state.connectionID
        }
        let connection = try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
        let kept = state.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.connection = connection
            return true
        }
        defer {
            state.withLock { state in
                if state.connection === connection { state.connection = nil }
            }
            PostgresConnectionPool.discard(connection)
        }
        guard kept else { return }
        // The first of the two to end ends the connection, without waiting
        // for the other: a statement on a connection that died may never
        // complete (see `PostgresConnectionPool.withConnection`).
        let (ended, end) = AsyncStream<Void>.makeStream()
        let listening = Task(executorPreference: StoreTaskExecutor.shared) { [wake, sender, logger] in
            do {
                try await connection.listen(on: Self.channel) { notifications in
                    // Listening from here: whatever committed before is read now.
                    wake()
                    for try await notification in notifications where notification.payload != sender { wake() }
                }
            } catch {
                logger.debug("listening for the feed ended", metadata: ["error": "\(String(reflecting: error))"])
            }
            end.yield()
        }
        let heartbeat = Task(executorPreference: StoreTaskExecutor.shared) { [timeout, logger] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.heartbeatInterval)
                if Task.isCancelled { return }
                do {
                    try await PostgresStore.within(timeout) {
                        // Named, so that it reads as what it is in pg_stat_activity.
                        try await connection.query("SELECT 1 AS authd_feed_heartbeat", logger: logger).consume()
                    }
                } catch {
                    logger.debug(
                        "the feed's wake-up connection did not answer",
                        metadata: ["error": "\(String(reflecting: error))"])
                    end.yield()
                    return
                }
            }
        }
        for await _ in ended { break }
        heartbeat.cancel()
        listening.cancel()
    }

    /// A commit of this daemon changed the feed: wake the others.
    func notifyOthers() {
        let start = state.withLock { state -> Bool in
            if state.stopped { return false }
            if state.sending {
                state.sendAgain = true
                return false
            }
            state.sending = true
            return true
        }
        guard start else { return }
        Task(executorPreference: StoreTaskExecutor.shared) { [self] in
            while true {
                let connection = state.withLock { state -> PostgresConnection? in
                    state.sendAgain = false
                    return state.connection
                }
                let sent = ContinuousClock.now
                // No connection (reconnecting): the others' polls stand in.
                if let connection {
                    do {
                        try await PostgresStore.within(timeout) { [sender, logger] in
                            try await connection.query(
                                "NOTIFY \(unescaped: Self.channel), '\(unescaped: sender)'", logger: logger
                            ).consume()
                        }
                    } catch {
                        // Never wait on that connection again: closed, it
                        // ends the listening, and `run` opens another.
                        logger.debug("a feed wake-up was not sent", metadata: ["error": "\(String(reflecting: error))"])
                        PostgresConnectionPool.discard(connection)
                    }
                }
                // Commits from now until then share the next notification.
                try? await Task.sleep(until: sent + Self.minimumInterval, clock: .continuous)
                let again = state.withLock { state -> Bool in
                    if state.sendAgain && !state.stopped { return true }
                    state.sending = false
                    return false
                }
                if !again { return }
            }
        }
    }

    func stop() {
        let connection = state.withLock { state -> PostgresConnection? in
            state.stopped = true
            return state.connection
        }
        if let connection { PostgresConnectionPool.discard(connection) }
    }
}

extension PostgresRowSequence {
    /// Reads and drops the rows (a statement run for its effect).
    fileprivate func consume() async throws {
        for try await _ in self {}
    }
}
