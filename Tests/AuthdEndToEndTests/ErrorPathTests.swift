import AuthCore
import Foundation
import Testing

@Suite(.timeLimit(.minutes(5))) struct ErrorPathTests {
    @Test func loginRefusalsAreAlikeWhateverTheCause() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("alice@example.com")
            let inactive = try rpc.createUser("sleepy@example.com")
            _ = try rpc.result("user.update", ["id": .string(inactive), "active": .bool(false)])
            let attempts: [(String, String)] = [
                ("nobody@example.com", defaultPassword),  // unknown email
                ("alice@example.com", "wrong password"),  // wrong password
                ("alice@example.com", String(repeating: "x", count: 73)),  // over-long password
                ("sleepy@example.com", defaultPassword),  // inactive account
                ("not an email", defaultPassword),  // malformed email
            ]
            var answers: Set<String> = []
            for (email, password) in attempts {
                let response = try rpc.call(
                    "auth.login", ["email": .string(email), "password": .string(password), "client": .string(email)])
                #expect(response.errorCode == 401)
                #expect(response.errorReason == "invalid_credentials")
                answers.insert(JSONWriter.encodeString(response["error"]!))
            }
            // Byte-for-byte the same error object every time.
            #expect(answers.count == 1)
            let reasons = daemon.events(named: "authn_login_fail").compactMap { $0["AUTHD_REASON"]?.stringValue }
            #expect(
                Set(reasons) == [
                    "unknown_user", "wrong_password", "password_too_long", "account_inactive", "invalid_email",
                ])
        }
    }

    /// The full table is `ServiceRulesTests.paramErrorsNameTheField`; here,
    /// that an error's field and reason reach the wire in `error.data`.
    @Test func paramErrorsNameTheFieldOnTheWire() throws {
        try withDaemon { _, rpc in
            let cases: [(String, JSONObject, String, String)] = [
                ("auth.login", ["password": .string("x")], "invalid_params", "email"),
                (
                    "user.create", ["email": .string("bad"), "password": .string(defaultPassword)], "invalid_email",
                    "email"
                ),
                ("session.revoke", [:], "invalid_params", "id"),
            ]
            for (method, params, reason, field) in cases {
                let response = try rpc.call(method, params)
                #expect(response.errorCode == -32602, "\(method) \(params)")
                #expect(response.errorReason == reason, "\(method) \(params)")
                #expect(response.errorField == field, "\(method) \(params)")
            }
        }
    }

    @Test func emptyTokensAreNoToken() throws {
        try withDaemon { _, rpc in
            for value: String in ["", "Bearer ", "Bearer  "] {
                let verify = try rpc.call("token.verify", ["token": .string(value)])
                let me = try rpc.call("user.me", ["access_token": .string(value)])
                let refresh = try rpc.call("auth.refresh", ["refresh_token": .string(value)])
                #expect(verify.errorReason == "no_token")
                #expect(verify.errorCode == 401)
                #expect(me.errorReason == "no_token")
                #expect(refresh.errorReason == "no_token")
            }
            #expect(try rpc.call("token.verify", ["token": .string("garbage")]).errorReason == "token_invalid")
            #expect(try rpc.call("token.verify", ["token": .string("garbage")]).errorCode == 403)
            #expect(
                try rpc.call("auth.refresh", ["refresh_token": .string("garbage")]).errorReason == "refresh_invalid")
            #expect(try rpc.call("auth.logout", ["refresh_token": .string("garbage")]).errorReason == "refresh_invalid")
        }
    }

    @Test func refreshAndAccessTokensAreNotInterchangeable() throws {
        try withDaemon { _, rpc in
            try rpc.createUser("alice@example.com")
            let tokens = try rpc.login("alice@example.com")
            #expect(try rpc.verify(tokens.refresh).errorReason == "token_invalid")
            #expect(try rpc.call("user.me", ["access_token": .string(tokens.refresh)]).errorReason == "token_invalid")
            #expect(
                try rpc.call("auth.refresh", ["refresh_token": .string(tokens.access)]).errorReason == "refresh_invalid"
            )
        }
    }

    /// The full table is `ServiceRulesTests.adminNotFoundAndConflicts`.
    @Test func adminNotFoundAndConflictsOnTheWire() throws {
        try withDaemon { _, rpc in
            try rpc.createUser("alice@example.com")
            let taken = try rpc.call(
                "user.create", ["email": .string("ALICE@example.com"), "password": .string(defaultPassword)])
            #expect(taken.errorCode == 409)
            #expect(taken.errorReason == "email_taken")
            let missing = try rpc.call("session.revoke", ["id": .string("nope")])
            #expect(missing.errorCode == 404)
            #expect(missing.errorReason == "not_found")
        }
    }

    @Test func unknownMethod() throws {
        try withDaemon { _, rpc in
            let response = try rpc.call("auth.nope")
            #expect(response.errorCode == -32601)
            #expect(response.errorReason == "method_not_found")
        }
    }

    @Test func busyWhenTheHashingQueueIsFull() throws {
        try withDaemon(flags: ["workers": "1", "max-queue": "1", "bcrypt-cost": "12"]) { _, rpc in
            // Many logins at once on one connection: one runs, one waits, the rest are refused at once.
            var lines = ""
            for index in 0..<12 {
                lines += RPCConnection.requestLine(
                    id: .int(index), method: "auth.login",
                    params: [
                        "email": .string("u\(index)@example.com"), "password": .string("whatever1"),
                        "client": .string("c\(index)"),
                    ])
            }
            try rpc.send(lines)
            var reasons: [String] = []
            for _ in 0..<12 { reasons.append(try rpc.readResponse().errorReason ?? "ok") }
            // One job runs and at most one waits: the others are refused at once.
            let busy = reasons.filter { $0 == "busy" }.count
            let hashed = reasons.filter { $0 == "invalid_credentials" }.count
            #expect(busy >= 10)
            #expect(hashed >= 1)
            #expect(busy + hashed == 12)
            // A verify is answered at once even now.
            let health = try rpc.call("sys.health")
            #expect(health["result"] != nil)
        }
        try withDaemon(flags: ["workers": "1", "max-queue": "1", "bcrypt-cost": "12"]) { _, rpc in
            var lines = ""
            for index in 0..<6 {
                lines += RPCConnection.requestLine(
                    id: .int(index), method: "auth.login",
                    params: ["email": .string("u\(index)@example.com"), "password": .string("whatever1")])
            }
            try rpc.send(lines)
            let busy = try (0..<6).map { _ in try rpc.readResponse() }.first { $0.errorReason == "busy" }
            #expect(busy?.errorCode == 503)
            #expect((busy?.retryAfter ?? 0) >= 1)
        }
    }
}
