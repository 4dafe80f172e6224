import AuthCore
import Foundation
import Testing

/// Several real daemons on one PostgreSQL database (each on its own socket
/// and state directory, as on several hosts), with requests in flight at
/// once; and one daemon whose database goes away and comes back.
@Suite(.enabled(if: PostgresDatabases.isAvailable), .timeLimit(.minutes(5)))
struct SeveralHostsTests {
    func withDaemons<T>(
        _ count: Int, url: String? = nil, flags: [String: String] = [:], _ body: ([DaemonProcess]) throws -> T
    ) throws -> T {
        let database = try url ?? PostgresDatabases.create()
        var all = flags
        all["database-url"] = database
        let daemons = try (0..<count).map { _ in
            // No signing secrets given: the first daemon generates them into
            // the database (sealed), and every daemon signs with those.
            try DaemonProcess.started(flags: all)
        }
        defer { for daemon in daemons { daemon.tearDown() } }
        return try body(daemons)
    }

    @Test func aUserCreatedOnOneHostLogsInAndIsRevokedOnAnother() throws {
        try withDaemons(2) { daemons in
            let a = try daemons[0].connect()
            let b = try daemons[1].connect()
            let id = try a.createUser("everywhere@example.com")
            let tokens = try b.login("everywhere@example.com")
            #expect(tokens.userID == id)
            // Issued on B, verified on A.
            #expect(try eventually { try a.verify(tokens.access)["result"] != nil })
            guard case .array(let users)? = try a.result("user.list", [:])["users"] else {
                Issue.record("user.list gave no users")
                return
            }
            #expect(users.count == 1)
            // Logout on A: B refuses the token at once (its feed), A too.
            _ = try a.result("auth.logout", ["refresh_token": .string(tokens.refresh)])
            #expect(try a.verify(tokens.access).errorReason == "session_revoked")
            #expect(try eventually { try b.verify(tokens.access).errorReason == "session_revoked" })
            // Deactivation on B holds on A.
            let again = try a.login("everywhere@example.com")
            _ = try b.result("user.update", ["id": .string(id), "active": .bool(false)])
            #expect(try eventually { try a.verify(again.access).errorReason == "account_inactive" })
            #expect(
                try a.call(
                    "auth.login", ["email": .string("everywhere@example.com"), "password": .string(defaultPassword)]
                ).errorReason == "invalid_credentials")
        }
    }

    @Test func oneRefreshTokenPresentedToTwoHostsAtOnceRotatesOnce() throws {
        try withDaemons(2) { daemons in
            let admin = try daemons[0].connect()
            try admin.createUser("twice@example.com")
            for _ in 0..<3 {
                let tokens = try admin.login("twice@example.com")
                let answers = Counter()
                let group = DispatchGroup()
                for daemon in daemons {
                    DispatchQueue.global().async(group: group) {
                        do {
                            let connection = try daemon.connect()
                            let answer = try connection.call("auth.refresh", ["refresh_token": .string(tokens.refresh)])
                            answers.add(answer["result"] != nil ? "rotated" : answer.errorReason ?? "?")
                        } catch {
                            answers.add("error: \(error)")
                        }
                    }
                }
                group.wait()
                #expect(answers.values.sorted() == ["refresh_reused", "rotated"], "\(answers.values)")
                // Reuse revoked the session on every host.
                for daemon in daemons {
                    let connection = try daemon.connect()
                    #expect(try eventually { try connection.verify(tokens.access).errorReason == "session_revoked" })
                }
            }
        }
    }

    /// Failed logins for one account spread over two hosts add up: five
    /// make the sixth attempt `429` on either host, even with the right
    /// password. Then twelve wrong attempts at once, six per host, on a
    /// second account: no more than five are ever checked.
    @Test func failedLoginLimitsAreSharedByEveryHost() throws {
        try withDaemons(2) { daemons in
            let hosts = try daemons.map { try $0.connect() }
            try hosts[0].createUser("spread@example.com")
            try hosts[0].createUser("flood@example.com")
            let wrong: @Sendable (RPCConnection, String) throws -> JSONObject = { host, email in
                try host.call("auth.login", ["email": .string(email), "password": .string("not the password")])
            }
            for attempt in 0..<5 {
                #expect(try wrong(hosts[attempt % 2], "spread@example.com").errorReason == "invalid_credentials")
            }
            for host in hosts {
                let refused = try host.call(
                    "auth.login", ["email": .string("spread@example.com"), "password": .string(defaultPassword)])
                #expect(refused.errorReason == "rate_limited")
            }

            let answers = Counter()
            let group = DispatchGroup()
            for index in 0..<12 {
                DispatchQueue.global().async(group: group) {
                    do {
                        let connection = try daemons[index % 2].connect()
                        answers.add(try wrong(connection, "flood@example.com").errorReason ?? "?")
                    } catch {
                        answers.add("error: \(error)")
                    }
                }
            }
            group.wait()
            let checked = answers.values.filter { $0 == "invalid_credentials" }.count
            #expect(checked == 5, "\(answers.values)")
            #expect(answers.values.filter { $0 == "rate_limited" }.count == 7, "\(answers.values)")
        }
    }

    /// The default client key is the peer's uid on its host: uid 0 spending
    /// its failed-login budget on host A does not spend uid 0's on host B,
    /// while a daemon that names itself host A shares A's budget.
    @Test func theDefaultClientBudgetIsPerHost() throws {
        let database = try PostgresDatabases.create()
        func start(_ name: String) throws -> DaemonProcess {
            try DaemonProcess.started(
                flags: ["database-url": database, "client-max-failures": "3", "instance-name": name])
        }
        let a = try start("host-a")
        defer { a.tearDown() }
        let b = try start("host-b")
        defer { b.tearDown() }
        let alsoA = try start("host-a")
        defer { alsoA.tearDown() }
        let onA = try a.connect()
        try onA.createUser("budget@example.com")
        for index in 0..<3 {
            let answer = try onA.call(
                "auth.login", ["email": .string("nobody\(index)@example.com"), "password": .string("wrong password")])
            #expect(answer.errorReason == "invalid_credentials")
        }
        let login: JSONObject = ["email": .string("budget@example.com"), "password": .string(defaultPassword)]
        #expect(try onA.call("auth.login", login).errorReason == "rate_limited")
        #expect(try alsoA.connect().call("auth.login", login).errorReason == "rate_limited")
        #expect(try b.connect().call("auth.login", login)["result"] != nil)
    }

    @Test func aHostCutOffFromItsDatabaseFailsClosed() throws {
        let server = try PostgresDatabases.PrivateServer()
        let url = try PostgresDatabases.create(on: server.url)
        try withDaemons(1, url: url, flags: ["max-staleness": "1", "database-timeout": "2"]) { daemons in
            let rpc = try daemons[0].connect()
            try rpc.createUser("cut@example.com")
            let tokens = try rpc.login("cut@example.com")
            #expect(try rpc.verify(tokens.access)["result"] != nil)
            try server.stop()
            // Writes: 503 unavailable, within the timeout, nothing done.
            let started = Date()
            let login = try rpc.call(
                "auth.login", ["email": .string("cut@example.com"), "password": .string(defaultPassword)])
            #expect(login.errorReason == "unavailable")
            #expect(login.errorCode == 503)
            #expect(Date().timeIntervalSince(started) < 10)
            // Reads from the view: trusted for max_staleness, then refused.
            #expect(try eventually { try rpc.verify(tokens.access).errorReason == "unavailable" })
            let health = try rpc.result("sys.health")
            #expect(health.string("status") == "degraded")
            #expect(daemons[0].isRunning)
            // The database returns: the daemon reconnects and catches up by
            // itself, without a restart.
            try server.start()
            let log = { () -> Comment in "daemon stderr: \(daemons[0].stderr.suffix(4_000))" }
            let recovered = try recovers(rpc, tokens.access)
            #expect(recovered.verify, log())
            #expect(recovered.login, log())
            #expect(recovered.healthy, log())
        }
    }

    /// The second step of a login while the database is away: `503
    /// unavailable` within the timeout, and nothing is spent. Once the
    /// database is back, the same `mfa_token` with a code opens a session.
    @Test func aSecondStepWhileTheDatabaseIsAwayIsRefusedAndSpendsNothing() throws {
        let server = try PostgresDatabases.PrivateServer()
        let url = try PostgresDatabases.create(on: server.url)
        try withDaemons(1, url: url, flags: ["database-timeout": "2"]) { daemons in
            let rpc = try daemons[0].connect()
            try rpc.createUser("second@example.com")
            let enrolled = try SecondFactorTests.enrol(rpc, try rpc.login("second@example.com"))
            let mfaToken = try SecondFactorTests.firstStep(rpc, "second@example.com")
            try server.stop()
            let started = Date()
            let refused = try SecondFactorTests.secondStep(rpc, mfaToken, enrolled.nextCode)
            #expect(refused.errorReason == "unavailable")
            #expect(Date().timeIntervalSince(started) < 10)

            try server.start()
            let log = { () -> Comment in "daemon stderr: \(daemons[0].stderr.suffix(4_000))" }
            #expect(try eventually(within: 30) { try rpc.result("sys.health").string("status") == "ok" }, log())
            // A code not used before: the next step's, or now's once the
            // clock has passed it.
            let now = enrolled.totp.step(at: Int64(Date().timeIntervalSince1970))
            let code = enrolled.totp.code(step: max(now, enrolled.confirmedStep + 1))
            let answer = try SecondFactorTests.secondStep(rpc, mfaToken, code)
            let opened = try #require(answer["result"]?.objectValue, "\(answer)")
            #expect(try rpc.verify(try #require(opened.string("access_token")))["result"] != nil)
        }
    }

    /// One host's network to the database drops packets (a proxy that
    /// forwards nothing, resets nothing) while another host revokes. The
    /// host cut off must not hang, must fail closed once `max_staleness`
    /// has passed, and must apply the revocation when the link returns.
    @Test func aHostCutOffAloneFailsClosedWhileAnotherRevokes() throws {
        let (direct, _, proxy, viaProxy) = try databaseBehindProxy()
        defer { proxy.stop() }
        let flags = ["max-staleness": "2", "database-timeout": "2"]
        let cutOff = try DaemonProcess.started(
            flags: flags.merging(["database-url": viaProxy]) { $1 })
        defer { cutOff.tearDown() }
        let other = try DaemonProcess.started(
            flags: flags.merging(["database-url": direct]) { $1 })
        defer { other.tearDown() }
        let a = try cutOff.connect()
        let b = try other.connect()
        try b.createUser("alone@example.com")
        let tokens = try b.login("alone@example.com")
        #expect(try eventually { try a.verify(tokens.access)["result"] != nil })

        proxy.cut()
        _ = try b.result("auth.logout", ["refresh_token": .string(tokens.refresh)])
        let revokedBy = Date()
        #expect(try b.verify(tokens.access).errorReason == "session_revoked")
        // The host cut off may answer from its view for max_staleness after
        // its last sync, which came before the revocation; a check sent
        // later than that must be refused.
        var lateAcceptances: [Double] = []
        var refused = false
        let deadline = Date().addingTimeInterval(2 + 5)
        while Date() < deadline && !refused {
            let sent = Date()
            let answer = try a.verify(tokens.access)
            if answer["result"] != nil, sent.timeIntervalSince(revokedBy) > 2 {
                lateAcceptances.append(sent.timeIntervalSince(revokedBy))
            }
            refused = answer.errorReason == "unavailable"
            usleep(20_000)
        }
        #expect(refused, "the host cut off never failed closed: \(cutOff.stderr.suffix(2_000))")
        #expect(lateAcceptances.isEmpty, "accepted a token revoked \(lateAcceptances) s earlier")
        // A write does not hang on the silent network: 503 within the timeout.
        let started = Date()
        let login = try a.call(
            "auth.login", ["email": .string("alone@example.com"), "password": .string(defaultPassword)])
        #expect(login.errorReason == "unavailable")
        #expect(Date().timeIntervalSince(started) < 8)
        #expect(try a.result("sys.health").string("status") == "degraded")
        // The host not cut off never noticed.
        #expect(try b.result("sys.health").string("status") == "ok")

        proxy.restore()
        let log = { () -> Comment in "daemon stderr: \(cutOff.stderr.suffix(4_000))" }
        // Caught up: the revocation made during the cut now holds here.
        #expect(try eventually(within: 30) { try a.verify(tokens.access).errorReason == "session_revoked" }, log())
        #expect(
            try eventually(within: 30) {
                try a.call(
                    "auth.login", ["email": .string("alone@example.com"), "password": .string(defaultPassword)])[
                        "result"] != nil
            }, log())
        #expect(try a.result("sys.health").string("status") == "ok", log())
    }

    /// The connection a daemon LISTENs on is cut without a word (packets
    /// dropped): no notification stream ends, so only the daemon's
    /// heartbeat on it can notice. It must give that connection up and
    /// LISTEN on a new one once the link returns; without the heartbeat
    /// the old one would simply carry on after the cut, deaf to whatever
    /// was notified during it, and no new listener would appear.
    @Test func aWakeUpConnectionCutSilentlyIsReplaced() throws {
        let name = "authd_heartbeat_\(UUID().uuidString.prefix(8).lowercased())"
        let (_, parsed, proxy, viaProxy) = try databaseBehindProxy(applicationName: name)
        defer { proxy.stop() }
        let daemon = try DaemonProcess.started(flags: ["database-url": viaProxy, "database-timeout": "2"])
        defer { daemon.tearDown() }
        // The backends of this daemon's wake-up connection: LISTEN, then
        // the heartbeat, are the only statements it runs.
        let listeners = { () throws -> Set<String> in
            let output = try PostgresDatabases.query(
                """
                SELECT pid FROM pg_stat_activity WHERE application_name = '\(name)'
                AND (query LIKE 'LISTEN%' OR query LIKE '%authd_feed_heartbeat%')
                """, url: parsed)
            return Set(output.split(separator: "\n").map(String.init))
        }
        var before: Set<String> = []
        #expect(
            try eventually {
                before = try listeners(); return before.count == 1
            })
        proxy.cut()
        // Longer than the heartbeat's interval and its time limit.
        sleep(14)
        proxy.restore()
        let log = { () -> Comment in "daemon stderr: \(daemon.stderr.suffix(3_000))" }
        #expect(try eventually(within: 20) { !(try listeners().subtracting(before)).isEmpty }, log())
        let rpc = try daemon.connect()
        #expect(try eventually(within: 20) { try rpc.result("sys.health").string("status") == "ok" }, log())
    }

    /// A new database, its direct URL (parsed too), and a URL to it through
    /// a `TCPProxy` the test can cut; the caller stops the proxy.
    func databaseBehindProxy(applicationName: String? = nil) throws -> (
        direct: String, parsed: DatabaseURL, proxy: TCPProxy, viaProxy: String
    ) {
        let direct = try PostgresDatabases.create()
        let parsed = try DatabaseURL.parse(direct)
        let proxy = try TCPProxy(toLoopbackPort: parsed.endpoint.port)
        var viaProxy = "postgresql://\(parsed.username)@127.0.0.1:\(proxy.port)/\(parsed.database)?sslmode=disable"
        if let applicationName { viaProxy += "&application_name=\(applicationName)" }
        return (direct, parsed, proxy, viaProxy)
    }

    /// Whether, after the database came back, the daemon verifies again,
    /// takes a login, and reports itself healthy.
    func recovers(_ rpc: RPCConnection, _ access: String) throws -> (verify: Bool, login: Bool, healthy: Bool) {
        let verify = try eventually(within: 30) { try rpc.verify(access)["result"] != nil }
        let login = try eventually(within: 30) {
            try rpc.call("auth.login", ["email": .string("cut@example.com"), "password": .string(defaultPassword)])[
                "result"] != nil
        }
        let healthy = try rpc.result("sys.health").string("status") == "ok"
        return (verify, login, healthy)
    }
}
