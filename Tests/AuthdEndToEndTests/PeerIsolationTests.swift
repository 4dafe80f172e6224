import AuthCore
import AuthStore
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What one peer (another uid) can do to the others' budgets, the database
/// and the security log, against the real daemon.
@Suite(.timeLimit(.minutes(5))) struct PeerIsolationTests {
    private func wrongLogin(id: Int, email: String, client: String?) -> String {
        var params: JSONObject = ["email": .string(email), "password": .string("wrong guess \(id)")]
        if let client { params["client"] = .string(client) }
        return RPCConnection.requestLine(id: .int(Int64(id)), method: "auth.login", params: params)
    }

    @Test func aReportedClientCannotSpendAnotherPeersBudget() throws {
        try withDaemon(flags: ["client-max-failures": "5", "login-max-failures": "100"]) { daemon, root in
            try root.createUser("root-user@example.com")
            // uid 65534 claims to be root's default client key.
            let lines = (0..<6).map { wrongLogin(id: $0, email: "nobody\($0)@example.com", client: "uid:0") }
            let answers = try callsAsUser(uid: 65534, socketPath: daemon.socketPath, lines: lines)
            #expect(answers.count == 6)
            // Its own (reported) client is spent: the sixth is limited.
            #expect(answers.filter { $0.errorReason == "rate_limited" }.count == 1)
            // Root's own login (no client, as authctl sends) is untouched.
            _ = try root.login("root-user@example.com")
            let tokens = try root.login("root-user@example.com")
            SecretLedger.record("a different password")
            #expect(
                try root.call(
                    "user.change_password",
                    [
                        "access_token": .string(tokens.access), "current_password": .string(defaultPassword),
                        "new_password": .string("a different password"),
                    ])["result"] != nil)
        }
    }

    /// The second factor's methods take an access token and the current
    /// password: another uid holding one user's token spends that user's
    /// account budget and its own client budget with wrong passwords, never
    /// root's client or another account.
    @Test func wrongPasswordsAtTheSecondFactorsMethodsSpendOnlyThatPeersBudgets() throws {
        try withDaemon(flags: ["client-max-failures": "5", "login-max-failures": "100"]) { daemon, root in
            try root.createUser("held@example.com")
            try root.createUser("other@example.com")
            let held = try root.login("held@example.com")
            let lines = (0..<6).map { id in
                RPCConnection.requestLine(
                    id: .int(Int64(id)), method: id % 2 == 0 ? "user.totp.enroll" : "user.totp.recovery_codes",
                    params: [
                        "access_token": .string(held.access), "current_password": .string("wrong guess \(id)"),
                        "code": .string("000000"),
                    ])
            }
            let answers = try callsAsUser(uid: 65534, socketPath: daemon.socketPath, lines: lines)
            #expect(answers.count == 6)
            #expect(answers.filter { $0.errorReason == "invalid_credentials" }.count == 5, "\(answers)")
            #expect(answers.filter { $0.errorReason == "rate_limited" }.count == 1, "\(answers)")
            // Root (its own client key) enrolls another account at once.
            let other = try root.login("other@example.com")
            let enrolled = try root.call(
                "user.totp.enroll",
                ["access_token": .string(other.access), "current_password": .string(defaultPassword)])
            #expect(enrolled["result"]?.objectValue?["secret"] != nil, "\(enrolled)")
        }
    }

    @Test func twoPeersReportingTheSameClientHaveSeparateBudgets() throws {
        try withDaemon(flags: ["client-max-failures": "3", "login-max-failures": "100"]) { daemon, _ in
            let spent = try callsAsUser(
                uid: 65534, socketPath: daemon.socketPath,
                lines: (0..<4).map { wrongLogin(id: $0, email: "a\($0)@example.com", client: "10.0.0.7") })
            #expect(spent.filter { $0.errorReason == "rate_limited" }.count == 1)
            let other = try callsAsUser(
                uid: 65533, socketPath: daemon.socketPath,
                lines: [wrongLogin(id: 1, email: "b@example.com", client: "10.0.0.7")])
            #expect(other.first?.errorReason == "invalid_credentials")
        }
    }

    @Test func anOverlongClientIsAParamsError() throws {
        try withDaemon { _, rpc in
            let answer = try rpc.call(
                "auth.login",
                [
                    "email": .string("x@example.com"), "password": .string("whatever pw"),
                    "client": .string(String(repeating: "c", count: 257)),
                ])
            #expect(answer.errorCode == -32602)
            #expect(answer.errorField == "client")
            let fits = try rpc.call(
                "auth.login",
                [
                    "email": .string("x@example.com"), "password": .string("whatever pw"),
                    "client": .string(String(repeating: "c", count: 256)),
                ])
            #expect(fits.errorReason == "invalid_credentials")
        }
    }

    @Test func refreshingInALoopKeepsOneTokenRowAndIsRateLimited() throws {
        let daemon = try DaemonProcess.started(flags: ["refresh-rate-limit": "1000"])
        defer { daemon.tearDown() }
        let rpc = try daemon.connect()
        try rpc.createUser("loop@example.com")
        var refresh = try rpc.login("loop@example.com").refresh
        for _ in 0..<300 {
            let rotated = try rpc.result("auth.refresh", ["refresh_token": .string(refresh)])
            refresh = try #require(rotated.string("refresh_token"))
        }
        SecretLedger.record(refresh)
        #expect(daemon.stop() == 0)
        let database = try AuthDatabase(path: daemon.stateDirectory + "/authd.sqlite3")
        #expect(try database.rowCounts()["refresh_tokens"] == 1)
        try database.close()
    }

    @Test func pastTheRefreshRateTheSessionGets429() throws {
        try withDaemon(flags: ["refresh-rate-limit": "3"]) { daemon, rpc in
            try rpc.createUser("fast@example.com")
            var refresh = try rpc.login("fast@example.com").refresh
            var limited: JSONObject?
            // Within one second at most 3 pass; a burst of 8 must hit the limit.
            for _ in 0..<8 {
                let response = try rpc.call("auth.refresh", ["refresh_token": .string(refresh)])
                if let next = response["result"]?.objectValue?.string("refresh_token") {
                    SecretLedger.record(next)
                    refresh = next
                } else {
                    limited = response
                    break
                }
            }
            let refusal = try #require(limited)
            #expect(refusal.errorCode == 429)
            #expect(refusal.errorReason == "rate_limited")
            #expect((refusal.retryAfter ?? 0) >= 1)
            // The refused token is still the session's current one: no reuse.
            sleep(1)
            #expect(try rpc.call("auth.refresh", ["refresh_token": .string(refresh)])["result"] != nil)
            #expect(daemon.events(named: "authn_token_reuse").isEmpty)
        }
    }

    @Test func theSessionLimitRevokesTheLeastRecentlyUsedSession() throws {
        try withDaemon(flags: ["max-sessions-per-user": "3"]) { daemon, rpc in
            try rpc.createUser("many@example.com")
            let first = try rpc.login("many@example.com")
            let second = try rpc.login("many@example.com")
            // Times are whole seconds: a second apart, so the order is certain.
            sleep(1)
            let third = try rpc.login("many@example.com")
            // The first is used again (refreshed) after the others: the
            // second is now the least recently used.
            sleep(1)
            let renewed = try rpc.result("auth.refresh", ["refresh_token": .string(first.refresh)])
            SecretLedger.record(renewed.string("access_token")!)
            SecretLedger.record(renewed.string("refresh_token")!)
            let fourth = try rpc.login("many@example.com")
            #expect(try rpc.verify(second.access).errorReason == "session_revoked")
            for live in [renewed.string("access_token")!, third.access, fourth.access] {
                #expect(try rpc.verify(live)["result"] != nil)
            }
            #expect(
                daemon.events(named: "authn_token_revoked").contains { $0["AUTHD_REASON"] == .string("session_limit") })
        }
    }

    @Test func oneFloodingPeerIsSummarisedAndDoesNotHideAnother() throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        let rpc = try daemon.connect()
        do {
            let garbage: [String] = (0..<300).map { (index: Int) -> String in
                RPCConnection.requestLine(id: nil, method: "token.verify", params: ["token": .string("a.b.c\(index)")])
            }
            // Notifications get no answer: end with one call to know all were read.
            let last = RPCConnection.requestLine(id: .int(1), method: "sys.health", params: nil)
            #expect(
                try callsAsUser(uid: 65534, socketPath: daemon.socketPath, lines: garbage + [last], expecting: 1).count
                    == 1)
            // Another peer's refusal in the middle of the flood is logged on its own.
            #expect(try rpc.verify("x.y.z").errorReason == "token_invalid")
            let flood = daemon.events(named: "authn_token_invalid").filter {
                $0["AUTHD_PEER_UID"] == .string("65534") && $0["AUTHD_COUNT"] == nil
            }
            #expect(flood.count == 50)
            #expect(
                daemon.events(named: "authn_token_invalid").contains { $0["AUTHD_PEER_UID"] == .string("0") })
            // At stop, the suppressed 250 are written as one aggregated entry.
            #expect(daemon.stop() == 0)
            let summaries = daemon.events(named: "authn_token_invalid").filter { $0["AUTHD_COUNT"] != nil }
            #expect(summaries.count == 1)
            #expect(summaries.first?["AUTHD_COUNT"] == .string("250"))
            #expect(summaries.first?["AUTHD_PEER_UID"] == .string("65534"))
        }
    }
}

/// A daemon started on a state directory or with keys it should not trust.
@Suite(.timeLimit(.minutes(5))) struct StateTrustTests {
    @Test func filesFromAnOlderVersionAreTightenedAndNewOnesArePrivate() throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        try daemon.connect().createUser("perm@example.com")
        #expect(daemon.stop() == 0)
        // As an older version under umask 022 left them.
        chmod(daemon.stateDirectory, 0o755)
        chmod(daemon.stateDirectory + "/authd.sqlite3", 0o644)
        chmod(daemon.stateDirectory + "/keys/access-key", 0o644)
        try daemon.start()
        for (path, mode) in [
            (daemon.stateDirectory, mode_t(0o700)), (daemon.stateDirectory + "/authd.sqlite3", 0o600),
            (daemon.stateDirectory + "/authd.sqlite3-wal", 0o600), (daemon.stateDirectory + "/keys/access-key", 0o600),
        ] {
            var info = stat()
            #expect(stat(path, &info) == 0, "\(path)")
            #expect(info.st_mode & 0o777 == mode, "\(path)")
        }
    }

    @Test func aStateDirectoryOwnedBySomeoneElseIsRefused() throws {
        let directory = DaemonProcess.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        mkdir(directory + "/state", 0o700)
        chown(directory + "/state", 65534, 65534)
        let (status, output) = try DaemonProcess.runToExit(arguments: [
            "--listen", directory + "/s.sock", "--state-dir", directory + "/state",
        ])
        #expect(status == 1)
        #expect(output.contains("belongs to uid 65534"), "\(output)")
    }

    @Test func aPlantedKeyIsRefused() throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        #expect(daemon.stop() == 0)
        let keys = daemon.stateDirectory + "/keys"
        // A symlink in place of the key: refused, never followed.
        let planted = daemon.directory + "/planted"
        FileManager.default.createFile(atPath: planted, contents: Data((0..<40).map { UInt8(65 + $0 % 26) }))
        unlink(keys + "/access-key")
        symlink(planted, keys + "/access-key")
        #expect(throws: DaemonError.self) { try daemon.start() }
        #expect(daemon.stderr.contains("symbolic link"), "\(daemon.stderr)")
        // A key file another user owns (or may write): refused.
        unlink(keys + "/access-key")
        FileManager.default.createFile(atPath: keys + "/access-key", contents: Data(repeating: 0x41, count: 40))
        chown(keys + "/access-key", 65534, 65534)
        #expect(throws: DaemonError.self) { try daemon.start() }
        chown(keys + "/access-key", 0, 0)
        chmod(keys + "/access-key", 0o666)
        #expect(throws: DaemonError.self) { try daemon.start() }
        #expect(daemon.stderr.contains("writable by its group or others"), "\(daemon.stderr)")
    }

    @Test func aSecondDaemonOnTheSameStateDirectoryIsRefused() throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        let (status, output) = try DaemonProcess.runToExit(arguments: [
            "--listen", "$DIR/other.sock", "--state-dir", daemon.stateDirectory,
        ])
        #expect(status == 1)
        #expect(output.contains("already running on the state directory"), "\(output)")
        #expect(output.contains("pid \(daemon.pid)"), "\(output)")
        #expect(try daemon.connect().call("sys.health")["result"] != nil)
    }

    @Test func aSocketAnotherDaemonServesIsNeverTakenOver() throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        let (status, output) = try DaemonProcess.runToExit(arguments: [
            "--listen", daemon.socketPath, "--state-dir", "$DIR/state",
        ])
        #expect(status == 1)
        #expect(output.contains("another daemon is already serving"), "\(output)")
        // The first daemon's socket is still there and still answers.
        #expect(try daemon.connect().call("sys.health")["result"] != nil)
    }

    @Test func theSocketHasItsModeFromTheStart() throws {
        try withDaemon { daemon, _ in
            var info = stat()
            #expect(lstat(daemon.socketPath, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o666)
        }
    }

    @Test func secretsWithTooLittleVarietyAreRefusedByName() throws {
        let (status, output) = try DaemonProcess.runToExit(
            arguments: ["--listen", "$DIR/s.sock", "--state-dir", "$DIR/state"],
            environment: [
                "JWT_SECRET": String(repeating: "a", count: 32),
                "JWT_REFRESH_SECRET": "0123456789abcdefghijklmnopqrstuvwxyz",
            ])
        #expect(status == 1)
        #expect(output.contains("distinct bytes"), "\(output)")
        #expect(!output.contains(String(repeating: "a", count: 32)))
    }

    @Test func eddsaNamesTheRealSourceOfAShortRefreshSecret() throws {
        let (status, output) = try DaemonProcess.runToExit(
            arguments: ["--listen", "$DIR/s.sock", "--state-dir", "$DIR/state", "--algorithm", "EdDSA"],
            environment: ["JWT_REFRESH_SECRET": "short"])
        #expect(status == 1)
        #expect(output.contains("JWT_REFRESH_SECRET"), "\(output)")
        #expect(!output.contains("generated Ed25519"), "\(output)")
    }
}

/// Strings that stand for bytes are compared as bytes: Swift's `String ==`
/// is canonical equivalence, under which other spellings would match.
@Suite(.timeLimit(.minutes(5))) struct SpellingTests {
    @Test func aRespelledCopyOfAVerifiedEdDSATokenIsRefused() throws {
        try withDaemon(flags: ["algorithm": "EdDSA"]) { _, rpc in
            try rpc.createUser("kelvin@example.com")
            var token = try rpc.login("kelvin@example.com").access
            // A token of some 300 base64url characters nearly always has a K.
            for _ in 0..<20 where !token.contains("K") { token = try rpc.login("kelvin@example.com").access }
            try #require(token.contains("K"))
            #expect(try rpc.verify(token)["result"] != nil)  // now in the verified-token cache
            let respelled = String(token.unicodeScalars.map { $0 == "K" ? Character("\u{212A}") : Character($0) })
            #expect(respelled == token)  // canonically equivalent: equal as Swift strings
            #expect(Array(respelled.utf8) != Array(token.utf8))
            #expect(try rpc.verify(respelled).errorReason == "token_invalid")
            #expect(try rpc.verify(token)["result"] != nil)
        }
    }

    /// Another uid holding nothing but a copy of a token the cache already
    /// verified for root: forgeries that keep its signature (and so its
    /// place in the cache) or cut it are refused in the same read burst
    /// as the real token's checks, each answer under its own id, and the
    /// cache serves root the right claims after.
    @Test func forgeriesOfACachedTokenFromAnotherPeerAreRefusedInOneBurst() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("alice@example.com", role: "editor")
            let token = try rpc.login("alice@example.com").access
            let first = try #require(try rpc.verify(token)["result"]?.objectValue)  // now cached
            let parts = token.split(separator: ".").map(String.init)
            var payload = Array(parts[1].utf8)
            payload[3] = payload[3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            let samePlace = parts[0] + "." + String(decoding: payload, as: UTF8.self) + "." + parts[2]
            let forgeries = [
                samePlace,
                String(token.dropLast()),
                token + "A",
                parts[0] + "." + parts[1] + "." + String(parts[2].reversed()),
                " " + token,
            ]
            var lines: [String] = []
            for (index, forged) in forgeries.enumerated() {
                lines.append(
                    RPCConnection.requestLine(
                        id: .int(Int64(2 * index)), method: "token.verify", params: ["token": .string(token)]))
                lines.append(
                    RPCConnection.requestLine(
                        id: .int(Int64(2 * index + 1)), method: "token.verify", params: ["token": .string(forged)]))
            }
            let answers = try callsAsUser(uid: 65534, socketPath: daemon.socketPath, lines: lines)
            #expect(answers.count == lines.count)
            for answer in answers {
                guard case .number(let text)? = answer["id"], let id = Int(text) else {
                    Issue.record("an answer without its id: \(answer)")
                    continue
                }
                if id % 2 == 0 {
                    #expect(answer["result"]?.objectValue == first, "id \(id)")
                } else {
                    #expect(answer.errorReason == "token_invalid", "id \(id): \(forgeries[id / 2])")
                }
            }
            #expect(try rpc.verify(token)["result"]?.objectValue == first)
        }
    }

    @Test func oneAddressInTwoSpellingsIsOneAccount() throws {
        try withDaemon { _, rpc in
            let composed = "jos\u{E9}@example.com"
            let decomposed = "jose\u{301}@example.com"
            let id = try rpc.createUser(composed)
            #expect(
                try rpc.call("user.create", ["email": .string(decomposed), "password": .string(defaultPassword)])
                    .errorReason == "email_taken")
            #expect(try rpc.login(decomposed).userID == id)
            #expect(try rpc.result("user.get", ["email": .string(decomposed)]).string("id") == id)
        }
    }

    @Test(arguments: ["a\u{200B}b@example.com", "ab@example.com\u{202E}", "a\u{2066}b@example.com"])
    func invisibleAndBidiCharactersAreRefusedWhereAnEmailIsSet(_ email: String) throws {
        try withDaemon { _, rpc in
            let create = try rpc.call("user.create", ["email": .string(email), "password": .string(defaultPassword)])
            #expect(create.errorReason == "invalid_email")
            let id = try rpc.createUser("plain@example.com")
            #expect(
                try rpc.call("user.update", ["id": .string(id), "email": .string(email)]).errorReason == "invalid_email"
            )
            // At login it is simply a wrong login.
            let login = try rpc.call("auth.login", ["email": .string(email), "password": .string(defaultPassword)])
            #expect(login.errorReason == "invalid_credentials")
        }
    }

    @Test func theBearerRuleIsTheSameForVerifyAndAdminMethods() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("boss@example.com", role: "admin")
            let tokens = try rpc.login("boss@example.com")
            #expect(try rpc.verify("Bearer " + tokens.access)["result"] != nil)
            #expect(try rpc.verify("Bearer  " + tokens.access).errorReason == "token_invalid")
            // As a non-admin peer, the same spellings decide admin access.
            let single = try callAsUser(
                uid: 65534, socketPath: daemon.socketPath,
                request: RPCConnection.requestLine(
                    id: .int(1), method: "user.list", params: ["access_token": .string("Bearer " + tokens.access)]))
            #expect(single["result"] != nil)
            let double = try callAsUser(
                uid: 65534, socketPath: daemon.socketPath,
                request: RPCConnection.requestLine(
                    id: .int(1), method: "user.list", params: ["access_token": .string("Bearer  " + tokens.access)]))
            #expect(double.errorReason == "forbidden")
        }
    }
}

@Suite(.timeLimit(.minutes(5))) struct ClaimArithmeticTests {
    /// A key holder's token with `exp` at `Int64.max` used to trap at
    /// `exp + leeway` and kill the daemon (SIGILL).
    @Test func aSignedTokenWithExpAtInt64MaxDoesNotCrashTheDaemon() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("far@example.com")
            let tokens = try rpc.login("far@example.com")
            var secret = Array(try Data(contentsOf: URL(fileURLWithPath: daemon.stateDirectory + "/keys/access-key")))
            if secret.last == 0x0A { secret.removeLast() }
            var claims = try #require(
                try JSONParser.parse(Base64URLDecode(String(tokens.access.split(separator: ".")[1]))).objectValue)
            for (field, value) in [("exp", Int64.max), ("iat", Int64.min), ("nbf", Int64.min)] {
                claims[field] = .int(value)
            }
            let forged = JWSCodec.sign(claims: claims, kind: .access, key: SigningKey(secret: secret))
            SecretLedger.record(forged)
            #expect(try rpc.verify(forged)["result"] != nil)  // its session is live: valid
            claims["iat"] = .int(Int64.max)
            let future = JWSCodec.sign(claims: claims, kind: .access, key: SigningKey(secret: secret))
            SecretLedger.record(future)
            #expect(try rpc.verify(future).errorReason == "token_invalid")
            #expect(daemon.isRunning)
            #expect(try rpc.call("sys.health")["result"] != nil)
        }
    }
}
