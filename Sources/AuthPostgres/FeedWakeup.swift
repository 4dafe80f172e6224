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

    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let wake: @Sendable () -> Void
    private let state = Locked(State())
    /// This daemon's name in its notifications' payload: random, not
    /// secret (hexadecimal, so it needs no quoting).
    private let sender = String(UInt64.random(in: .min ... .max), radix: 16)

    /// `wake` is called for every notification and after every
    /// (re)connection.
    init(configuration: PostgresConnection.Configuration, logger: Logger, wake: @escaping @Sendable () -> Void) {
        self.configuration = configuration
        self.logger = logger
        self.wake = wake
    }

    /// Listens until `stop()`, reconnecting after a loss.
    func run() async {
        while !state.withLock({ $0.stopped }) {
            do {
                try await listenOnce()
            } catch {
                logger.debug("the feed's wake-up connection ended", metadata: ["error": "\(String(reflecting: error))"])
            }
            if state.withLock({ $0.stopped }) { break }
            try? await Task.sleep(for: ChangeFeed.retryDelay)
        }
    }

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
            connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
        }
        guard kept else { return }
        try await connection.listen(on: Self.channel) { [wake, sender] notifications in
            // Listening from here: whatever committed before is read now.
            wake()
            for try await notification in notifications where notification.payload != sender { wake() }
        }
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
                        try await connection.query(
                            "NOTIFY \(unescaped: Self.channel), '\(unescaped: sender)'", logger: logger
                        ).consume()
                    } catch {
                        logger.debug("a feed wake-up was not sent", metadata: ["error": "\(String(reflecting: error))"])
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
        connection?.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }
}

extension PostgresRowSequence {
    /// Reads and drops the rows (a statement run for its effect).
    fileprivate func consume() async throws {
        for try await _ in self {}
    }
}
