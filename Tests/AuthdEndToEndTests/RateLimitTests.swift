import AuthCore
import Foundation
import Testing

@Suite(.timeLimit(.minutes(5))) struct RateLimitTests {
    @Test func tenPipelinedWrongPasswordsGiveExactlyFiveFailuresAndFiveLimits() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("target@example.com")
            var lines = ""
            for index in 0..<10 {
                lines += RPCConnection.requestLine(
                    id: .int(index), method: "auth.login",
                    params: ["email": .string("target@example.com"), "password": .string("wrong guess \(index)")])
            }
            try rpc.send(lines)
            var codes: [Int64] = []
            for _ in 0..<10 {
                let response = try rpc.readResponse()
                codes.append(response.errorCode ?? 0)
                if response.errorCode == 429 {
                    #expect(response.errorReason == "rate_limited")
                    #expect((response.retryAfter ?? 0) >= 1)
                }
            }
            #expect(codes.filter { $0 == 401 }.count == 5)
            #expect(codes.filter { $0 == 429 }.count == 5)
            // Past the limit even the right password is refused, without a hash.
            let right = try rpc.call(
                "auth.login", ["email": .string("target@example.com"), "password": .string(defaultPassword)])
            #expect(right.errorReason == "rate_limited")
            // One lock event per lock; the refusals after it are failures
            // (reason rate_limited), which a flood of them aggregates.
            #expect(daemon.events(named: "authn_login_lock").count == 1)
            #expect(
                daemon.events(named: "authn_login_fail").filter { $0["AUTHD_REASON"] == .string("rate_limited") }.count
                    == 5)
            // Another account from the same peer is not affected.
            try rpc.createUser("other@example.com")
            _ = try rpc.login("other@example.com")
        }
    }

    @Test func concurrentCorrectLoginsAreNeverRefused() throws {
        try withDaemon { _, rpc in
            try rpc.createUser("busy@example.com")
            var lines = ""
            for index in 0..<12 {
                lines += RPCConnection.requestLine(
                    id: .int(index), method: "auth.login",
                    params: ["email": .string("busy@example.com"), "password": .string(defaultPassword)])
            }
            try rpc.send(lines)
            for _ in 0..<12 {
                let response = try rpc.readResponse()
                #expect(response["result"] != nil, "\(response)")
            }
        }
    }

    @Test func aSuccessfulLoginClearsTheAccountCount() throws {
        try withDaemon { _, rpc in
            try rpc.createUser("reset@example.com")
            for _ in 0..<4 {
                #expect(
                    try rpc.call(
                        "auth.login", ["email": .string("reset@example.com"), "password": .string("nope nope")]
                    ).errorCode == 401)
            }
            _ = try rpc.login("reset@example.com")
            for _ in 0..<4 {
                #expect(
                    try rpc.call(
                        "auth.login", ["email": .string("reset@example.com"), "password": .string("nope nope")]
                    ).errorCode == 401)
            }
            _ = try rpc.login("reset@example.com")
        }
    }

    @Test func unknownAccountsAreLimitedJustLikeKnownOnes() throws {
        try withDaemon { _, rpc in
            var codes: [Int64] = []
            for _ in 0..<6 {
                codes.append(
                    try rpc.call(
                        "auth.login", ["email": .string("ghost@example.com"), "password": .string("whatever1")]
                    ).errorCode ?? 0)
            }
            #expect(codes == [401, 401, 401, 401, 401, 429])
        }
    }

    @Test func theClientLimitUsesParamsClientOrThePeerUID() throws {
        try withDaemon(flags: ["client-max-failures": "3"]) { _, rpc in
            for index in 0..<3 {
                _ = try rpc.call(
                    "auth.login",
                    [
                        "email": .string("u\(index)@example.com"), "password": .string("whatever1"),
                        "client": .string("203.0.113.9"),
                    ])
            }
            let limited = try rpc.call(
                "auth.login",
                [
                    "email": .string("fresh@example.com"), "password": .string("whatever1"),
                    "client": .string("203.0.113.9"),
                ])
            #expect(limited.errorReason == "rate_limited")
            let otherClient = try rpc.call(
                "auth.login",
                [
                    "email": .string("fresh@example.com"), "password": .string("whatever1"),
                    "client": .string("198.51.100.1"),
                ])
            #expect(otherClient.errorReason == "invalid_credentials")
            // Without params.client, the peer uid is the client.
            for index in 0..<3 {
                _ = try rpc.call(
                    "auth.login", ["email": .string("v\(index)@example.com"), "password": .string("whatever1")])
            }
            #expect(
                try rpc.call("auth.login", ["email": .string("w@example.com"), "password": .string("whatever1")])
                    .errorReason == "rate_limited")
        }
    }

    @Test func countsSurviveARestart() throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        let rpc = try daemon.connect()
        try rpc.createUser("persist@example.com")
        for _ in 0..<5 {
            _ = try rpc.call(
                "auth.login", ["email": .string("persist@example.com"), "password": .string("bad guess!")])
        }
        #expect(daemon.stop() == 0)
        try daemon.start()
        let again = try daemon.connect()
        let response = try again.call(
            "auth.login", ["email": .string("persist@example.com"), "password": .string(defaultPassword)])
        #expect(response.errorReason == "rate_limited")
    }
}
