import AuthCore
import Foundation
import Testing

/// One peer flooding the store with calls, against the real daemon on
/// PostgreSQL, whose calls do not block a worker: the flood is bounded by
/// the peer's share of the store queue as on SQLite, and another peer's
/// call is served. (Its calls once went straight to the database's
/// connection pool, unbounded: thousands of one peer's logouts in front of
/// everyone else's refreshes until they timed out.)
@Suite(.enabled(if: PostgresDatabases.isAvailable), .timeLimit(.minutes(5)))
struct StoreQueueTests {
    @Test func aPeersFloodOfStoreCallsIsBoundedByItsShareAndOthersAreServed() throws {
        let database = try PostgresDatabases.create()
        let url = try DatabaseURL.parse(database)
        // Four calls in flight (one connection), four more queued per peer;
        // a statement may wait a minute, so the calls let through wait for
        // the lock below however slowly the flood is read (TSan).
        let flags = [
            "database-url": database, "database-pool-size": "1", "max-queue": "16", "max-queue-per-peer": "4",
            "database-timeout": "60",
        ]
        try withDaemon(flags: flags) { daemon, root in
            try root.createUser("flood@example.com")
            let tokens = try root.login("flood@example.com")
            // The session's row is locked until the flood has had its
            // refusals: every logout with its token waits in the database
            // meanwhile, so no place frees before they are all in. Only
            // this test's database counts: other suites sleep on the same
            // server at the same time (CI once saw two sleepers here).
            // psql may fail to start or connect on a loaded machine (CI once
            // saw the lock never taken, and the flood then ran unlocked): the
            // holder tries again, and its last error is the failure's message.
            let holder = LockHolder()
            let holding = Thread {
                for _ in 0..<5 {
                    do {
                        _ = try PostgresDatabases.query(
                            "BEGIN; SELECT 1 FROM sessions FOR UPDATE; SELECT pg_sleep(60); COMMIT", url: url)
                        return
                    } catch {
                        holder.failed(with: error)
                        if holder.wasTerminated { return }
                        usleep(200_000)
                    }
                }
            }
            holding.start()
            try #require(
                try eventually(within: 30) {
                    try PostgresDatabases.query(
                        """
                        SELECT count(*) FROM pg_stat_activity
                        WHERE datname = current_database() AND wait_event = 'PgSleep'
                        """, url: url
                    ).trimmingCharacters(in: .whitespacesAndNewlines) == "1"
                },
                """
                the lock holder never slept: \(holder.lastError ?? "no error"); the database's sessions: \
                \((try? PostgresDatabases.query(
                    "SELECT state, wait_event, left(query, 60) FROM pg_stat_activity WHERE datname = current_database()",
                    url: url)) ?? "?")
                """)
            let line = RPCConnection.requestLine(
                id: .int(1), method: "auth.logout", params: ["refresh_token": .string(tokens.refresh)])
            let answers = FloodAnswers()
            let flooding = Thread {
                // Four in flight and four queued reach the store and wait;
                // the first 292 answers are the rest, refused at once.
                answers.set(
                    (try? callsAsUser(
                        uid: 65534, socketPath: daemon.socketPath, lines: Array(repeating: line, count: 300),
                        expecting: 292)) ?? [])
                holder.terminate()
                _ = try? PostgresDatabases.query(
                    """
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE datname = current_database() AND wait_event = 'PgSleep'
                    """, url: url)
            }
            flooding.start()
            // Root's call, sent while the flood waits: queued in its own
            // share, served once a place is free, never refused.
            let other = try root.call("user.get", ["email": .string("flood@example.com")])
            #expect(other.errorReason == nil, "\(other)")
            #expect(eventually(within: 60) { answers.value != nil })
            let flooded = answers.value ?? []
            #expect(flooded.count == 292)
            let reasons = Dictionary(grouping: flooded.map { $0.errorReason ?? "ok" }, by: { $0 }).mapValues(\.count)
            #expect(reasons == ["busy": 292], "\(reasons)")
            // Every place is free again: the daemon serves as before.
            #expect(try root.call("user.get", ["email": .string("flood@example.com")]).errorReason == nil)
        }
    }
}

/// The flooding peer's answers, once all are in.
private final class FloodAnswers: @unchecked Sendable {
    private let lock = NSLock()
    private var answers: [JSONObject]?

    var value: [JSONObject]? { lock.withLock { answers } }
    func set(_ value: [JSONObject]) { lock.withLock { answers = value } }
}

/// The lock-holding psql's last error, and whether the test ended its sleep
/// (after which its error is expected and it must not try again).
private final class LockHolder: @unchecked Sendable {
    private let lock = NSLock()
    private var error: String?
    private var terminated = false

    var lastError: String? { lock.withLock { error } }
    var wasTerminated: Bool { lock.withLock { terminated } }
    func failed(with error: any Error) { lock.withLock { self.error = "\(error)" } }
    func terminate() { lock.withLock { terminated = true } }
}
