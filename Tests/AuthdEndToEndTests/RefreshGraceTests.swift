import AuthCore
import AuthStore
import Foundation
import Testing

/// The refresh grace window (`refresh_grace`, RFC 9700 4.14.2) against the
/// real daemon: a client whose refresh answer was lost, or two processes
/// refreshing one token at once, converge on one successor instead of
/// revoking their session as reuse; past the window, the count or the
/// successor's first use, a spent token is reuse as before.
@Suite(.timeLimit(.minutes(5))) struct RefreshGraceTests {
    /// The stores the daemon runs on here: SQLite, and PostgreSQL when the
    /// test server is up.
    enum Store: String, CaseIterable, CustomTestStringConvertible {
        case sqlite
        case postgres

        static var available: [Store] { [.sqlite] + (PostgresDatabases.isAvailable ? [.postgres] : []) }
        var testDescription: String { rawValue }

        func flags(_ flags: [String: String]) throws -> [String: String] {
            guard self == .postgres else { return flags }
            return flags.merging(["database-url": try PostgresDatabases.create()]) { $1 }
        }
    }

    /// Refreshes with `token`; the answer's refresh token is recorded, so
    /// the teardown's check that no token is written in the clear covers it.
    static func refresh(_ rpc: RPCConnection, _ token: String) throws -> JSONObject {
        let answer = try rpc.call("auth.refresh", ["refresh_token": .string(token)])
        if let next = answer["result"]?.objectValue?.string("refresh_token") {
            SecretLedger.record(next)
        }
        return answer
    }

    @Test(arguments: Store.available) func aLostAnswerIsRetriedAndGetsTheSameSuccessorThreeTimes(_ store: Store) throws
    {
        try withDaemon(flags: try store.flags(["refresh-grace": "30"])) { daemon, rpc in
            try rpc.createUser("lost@example.com")
            let tokens = try rpc.login("lost@example.com")
            let first = try #require(try Self.refresh(rpc, tokens.refresh)["result"]?.objectValue)
            let successor = try #require(first.string("refresh_token"))
            #expect(successor != tokens.refresh)
            for _ in 0..<3 {
                let again = try #require(try Self.refresh(rpc, tokens.refresh)["result"]?.objectValue)
                #expect(again.string("refresh_token") == successor)
                // A fresh access token of the same session.
                let access = try #require(again.string("access_token"))
                let sid = try rpc.verify(access)["result"]?.objectValue?["claims"]?.objectValue?.string("sid")
                let firstSid = try rpc.verify(first.string("access_token")!)["result"]?.objectValue?["claims"]?
                    .objectValue?.string("sid")
                #expect(sid != nil && sid == firstSid)
                let expiresIn = try #require(again["refresh_expires_in"]?.int64Value)
                #expect(expiresIn > 604_800 - 60 && expiresIn <= 604_800)
            }
            #expect(
                daemon.events(named: "authn_token_refreshed").filter { $0["AUTHD_REASON"] == .string("refresh_grace") }
                    .count
                    == 3)
            // A fourth: reuse, the session ends, the successor with it.
            let fourth = try Self.refresh(rpc, tokens.refresh)
            #expect(fourth.errorReason == "refresh_reused")
            #expect(try Self.refresh(rpc, successor).errorReason == "refresh_invalid")
            #expect(daemon.events(named: "authn_token_reuse").count == 1)
        }
    }

    /// Two connections send a refresh of one token at the same moment, many
    /// times over: both answers carry the same successor, and it works.
    @Test(arguments: Store.available) func twoRefreshesInFlightAtOnceGetTheSameSuccessor(_ store: Store) throws {
        try withDaemon(flags: try store.flags(["refresh-grace": "30"])) { daemon, rpc in
            try rpc.createUser("twice@example.com")
            for _ in 0..<10 {
                let tokens = try rpc.login("twice@example.com")
                let answers = try Self.atOnce(
                    [daemon, daemon], method: "auth.refresh", params: ["refresh_token": .string(tokens.refresh)])
                let successors = answers.map { $0["result"]?.objectValue?.string("refresh_token") }
                #expect(successors[0] != nil && successors[0] == successors[1], "\(answers)")
                if let successor = successors[0] {
                    SecretLedger.record(successor)
                    #expect(try Self.refresh(rpc, successor)["result"] != nil)
                }
            }
            #expect(daemon.events(named: "authn_token_reuse").isEmpty)
            #expect(Self.replays(daemon) == 10)
        }
    }

    /// The same on two daemons sharing one PostgreSQL database: each gets
    /// one of the two refreshes, and both answer with one successor.
    @Test(.enabled(if: PostgresDatabases.isAvailable)) func twoDaemonsRefreshingOneTokenAtOnceAnswerOneSuccessor()
        throws
    {
        let database = try PostgresDatabases.create()
        let flags = ["database-url": database, "refresh-grace": "30"]
        let first = try DaemonProcess.started(flags: flags)
        defer { first.tearDown() }
        let second = try DaemonProcess.started(flags: flags)
        defer { second.tearDown() }
        let rpc = try first.connect()
        try rpc.createUser("hosts@example.com")
        for _ in 0..<10 {
            let tokens = try rpc.login("hosts@example.com")
            let answers = try Self.atOnce(
                [first, second], method: "auth.refresh", params: ["refresh_token": .string(tokens.refresh)])
            let successors = answers.map { $0["result"]?.objectValue?.string("refresh_token") }
            #expect(successors[0] != nil && successors[0] == successors[1], "\(answers)")
            if let successor = successors[0] { SecretLedger.record(successor) }
        }
        #expect(first.events(named: "authn_token_reuse").isEmpty && second.events(named: "authn_token_reuse").isEmpty)
        #expect(Self.replays(first) + Self.replays(second) == 10)
    }

    @Test(arguments: Store.available) func aSpentTokenWhoseSuccessorWasUsedIsReuse(_ store: Store) throws {
        try withDaemon(flags: try store.flags(["refresh-grace": "30"])) { daemon, rpc in
            try rpc.createUser("used@example.com")
            let tokens = try rpc.login("used@example.com")
            let second = try #require(
                try Self.refresh(rpc, tokens.refresh)["result"]?.objectValue?.string("refresh_token"))
            let third = try #require(try Self.refresh(rpc, second)["result"]?.objectValue?.string("refresh_token"))
            #expect(try Self.refresh(rpc, tokens.refresh).errorReason == "refresh_reused")
            #expect(try Self.refresh(rpc, third).errorReason == "refresh_invalid")
        }
    }

    /// Past the window a spent token is reuse, and the successor kept for
    /// it is deleted within seconds (the short timer, not the sweep).
    @Test func theWindowEndsAndTheKeptSuccessorIsDeleted() throws {
        try withDaemon(flags: ["refresh-grace": "1", "sweep-interval": "3600"]) { daemon, rpc in
            try rpc.createUser("late@example.com")
            let tokens = try rpc.login("late@example.com")
            let second = try #require(
                try Self.refresh(rpc, tokens.refresh)["result"]?.objectValue?.string("refresh_token"))
            let database = try AuthDatabase(path: daemon.stateDirectory + "/authd.sqlite3")
            #expect(try database.rowCounts()["refresh_grace"] == 1)
            // The window is whole seconds from the spending second.
            #expect(eventually(within: 15) { (try? database.rowCounts()["refresh_grace"]) == 0 })
            #expect(try Self.refresh(rpc, tokens.refresh).errorReason == "refresh_reused")
            #expect(try Self.refresh(rpc, second).errorReason == "refresh_invalid")
        }
    }

    /// With SQLite and no key given, the key-encryption key is generated
    /// into the state directory (0600) at the first start and read again
    /// after a restart: a reload turns the window on, and a successor kept
    /// before the restart is answered after it.
    @Test func aReloadTurnsTheWindowOnAndARestartKeepsTheKey() throws {
        let directory = DaemonProcess.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/authd.json"
        try Data(#"{"refresh_grace": 0}"#.utf8).write(to: URL(fileURLWithPath: config))
        let daemon = DaemonProcess(flags: ["config": config])
        defer { daemon.tearDown() }
        try daemon.start()
        let keyPath = daemon.stateDirectory + "/keys/key-encryption-key"
        let info = try FileManager.default.attributesOfItem(atPath: keyPath)
        #expect((info[.posixPermissions] as? Int) == 0o600)
        let key = try String(contentsOfFile: keyPath, encoding: .utf8)
        var rpc = try daemon.connect()
        try rpc.createUser("reload@example.com")
        // Without a window a second presentation is reuse.
        let before = try rpc.login("reload@example.com")
        _ = try Self.refresh(rpc, before.refresh)
        #expect(try Self.refresh(rpc, before.refresh).errorReason == "refresh_reused")

        try Data(#"{"refresh_grace": 30}"#.utf8).write(to: URL(fileURLWithPath: config))
        kill(daemon.pid, SIGHUP)
        #expect(eventually { daemon.stderr.contains("configuration and keys reloaded") })
        let tokens = try rpc.login("reload@example.com")
        let successor = try #require(
            try Self.refresh(rpc, tokens.refresh)["result"]?.objectValue?.string("refresh_token"))

        daemon.stop()
        try daemon.start()
        rpc = try daemon.connect()
        #expect(try String(contentsOfFile: keyPath, encoding: .utf8) == key)
        #expect(try Self.refresh(rpc, tokens.refresh)["result"]?.objectValue?.string("refresh_token") == successor)
    }

    /// How many refreshes the daemon answered as replays.
    static func replays(_ daemon: DaemonProcess) -> Int {
        daemon.events(named: "authn_token_refreshed").filter { $0["AUTHD_REASON"] == .string("refresh_grace") }.count
    }

    /// Sends one request to each daemon on connections of their own, all
    /// written before any answer is read, and returns the answers in order.
    static func atOnce(_ daemons: [DaemonProcess], method: String, params: JSONObject) throws -> [JSONObject] {
        let connections = try daemons.map { try $0.connect() }
        defer { for connection in connections { connection.close() } }
        let line = RPCConnection.requestLine(id: .int(1), method: method, params: params)
        let start = DispatchSemaphore(value: 0)
        let sent = DispatchGroup()
        for connection in connections {
            sent.enter()
            DispatchQueue.global().async {
                start.wait()
                try? connection.send(line)
                sent.leave()
            }
        }
        for _ in connections { start.signal() }
        sent.wait()
        return try connections.map { try $0.readResponse() }
    }
}
