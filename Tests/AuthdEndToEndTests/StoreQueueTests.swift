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
        // Four calls in flight (one connection), four more queued per peer.
        let flags = ["database-url": database, "database-pool-size": "1", "max-queue": "16", "max-queue-per-peer": "4"]
        try withDaemon(flags: flags) { daemon, root in
            try root.createUser("flood@example.com")
            let tokens = try root.login("flood@example.com")
            // The session's row is locked for three seconds: every logout
            // with its token waits in the database meanwhile, so whatever
            // the flood gets past the queue is still in flight when it ends.
            let holder = Thread {
                _ = try? PostgresDatabases.query(
                    "BEGIN; SELECT 1 FROM sessions FOR UPDATE; SELECT pg_sleep(3); COMMIT", url: url)
            }
            holder.start()
            #expect(
                try eventually {
                    try PostgresDatabases.query(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'", url: url
                    ).trimmingCharacters(in: .whitespacesAndNewlines) == "1"
                })
            let line = RPCConnection.requestLine(
                id: .int(1), method: "auth.logout", params: ["refresh_token": .string(tokens.refresh)])
            let answers = FloodAnswers()
            let flooding = Thread {
                answers.set(
                    (try? callsAsUser(
                        uid: 65534, socketPath: daemon.socketPath, lines: Array(repeating: line, count: 300))) ?? [])
            }
            flooding.start()
            // Root's call, sent while the flood waits: queued in its own
            // share, served once a place is free, never refused.
            let other = try root.call("user.get", ["email": .string("flood@example.com")])
            #expect(other.errorReason == nil, "\(other)")
            #expect(eventually(within: 30) { answers.value != nil })
            let flooded = answers.value ?? []
            #expect(flooded.count == 300)
            let reasons = Dictionary(grouping: flooded.map { $0.errorReason ?? "ok" }, by: { $0 }).mapValues(\.count)
            #expect(Set(reasons.keys).isSubset(of: ["ok", "busy", "refresh_invalid", "refresh_reused"]), "\(reasons)")
            // Four in flight and four queued reached the store; the rest
            // were answered busy at once.
            #expect(flooded.count - reasons["busy", default: 0] <= 8, "\(reasons)")
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
