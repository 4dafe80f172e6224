import AuthCore
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `sys.metrics` against the real daemon: each answer moves its method's
/// counter under its outcome and its histogram, and only those.
@Suite(.timeLimit(.minutes(5))) struct MetricsTests {
    /// The samples of an exposition by series (`name{labels}`), comments left out.
    static func samples(_ result: JSONObject) throws -> [String: Double] {
        #expect(result.string("content_type") == "text/plain; version=0.0.4")
        let text = try #require(result.string("text"))
        #expect(text.hasSuffix("\n"))
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let space = try #require(line.lastIndex(of: " "), "\(line)")
            let series = String(line[..<space])
            #expect(samples[series] == nil, "\(series) twice")
            samples[series] = try #require(Double(line[line.index(after: space)...]), "\(line)")
        }
        return samples
    }

    static func requests(_ method: String, _ outcome: String) -> String {
        #"authd_requests_total{method="\#(method)",outcome="\#(outcome)"}"#
    }

    static func durations(_ method: String, _ suffix: String, le: String? = nil) -> String {
        let bound = le.map { #",le="\#($0)""# } ?? ""
        return #"authd_request_duration_seconds_\#(suffix){method="\#(method)"\#(bound)}"#
    }

    @Test func loginsAndVerifiesMoveTheirCountersAndHistogramsExactly() throws {
        try withDaemon { _, rpc in
            try rpc.createUser("metrics@example.com")
            let before = try MetricsTests.samples(try rpc.result("sys.metrics"))
            // Every method is listed before its first call.
            #expect(before[MetricsTests.requests("auth.login", "ok")] == 0)
            #expect(before[MetricsTests.durations("auth.login", "count")] == 0)
            #expect(before[MetricsTests.requests("user.totp.reset", "ok")] == 0)
            #expect(before[MetricsTests.requests("user.create", "ok")] == 1)
            #expect(before["authd_users"] == 1)
            #expect(before["authd_live_sessions"] == 0)

            var tokens: [Tokens] = []
            for _ in 0..<3 { tokens.append(try rpc.login("metrics@example.com")) }
            let refused = try rpc.call(
                "auth.login", ["email": .string("metrics@example.com"), "password": .string("not the password")])
            #expect(refused.errorReason == "invalid_credentials")
            for token in tokens + [tokens[0]] { #expect(try rpc.verify(token.access)["result"] != nil) }
            #expect(try rpc.verify("garbage").errorReason == "token_invalid")

            let after = try MetricsTests.samples(try rpc.result("sys.metrics"))
            #expect(after[MetricsTests.requests("auth.login", "ok")] == 3)
            #expect(after[MetricsTests.requests("auth.login", "invalid_credentials")] == 1)
            #expect(after[MetricsTests.requests("auth.login", "rate_limited")] == nil)
            #expect(after[MetricsTests.durations("auth.login", "count")] == 4)
            #expect(after[MetricsTests.durations("auth.login", "bucket", le: "+Inf")] == 4)
            // A bcrypt login (cost 10 or more) takes more than 50 µs.
            #expect(after[MetricsTests.durations("auth.login", "bucket", le: "0.00005")] == 0)
            #expect(after[MetricsTests.durations("auth.login", "sum")].map { $0 > 0 } == true)
            #expect(after[MetricsTests.requests("token.verify", "ok")] == 4)
            #expect(after[MetricsTests.requests("token.verify", "token_invalid")] == 1)
            #expect(after[MetricsTests.durations("token.verify", "count")] == 5)
            // The first sys.metrics is counted; the one answering is not yet.
            #expect(after[MetricsTests.requests("sys.metrics", "ok")] == 1)
            #expect(after[MetricsTests.requests("user.create", "ok")] == 1)
            #expect(after["authd_users"] == 1)
            #expect(after["authd_live_sessions"] == 3)
            #expect(after[#"authd_queue_depth{queue="hash"}"#] == 0)
            #expect(after[#"authd_queue_capacity{queue="hash"}"#] == 1024)
            #expect(after[#"authd_queue_depth{queue="store"}"#] == 0)
            // Itself, and the call before it while that one's answer is still
            // being handed over (its count drops once it is).
            #expect(after["authd_requests_in_flight"].map { (1...2).contains($0) } == true)
            #expect(after.keys.contains { $0.hasPrefix("authd_build_info{version=") })
            // Nothing else moved: every other method's count is unchanged.
            for (series, value) in after
            where series.hasPrefix("authd_requests_total{")
                && !["auth.login", "token.verify", "sys.metrics"].contains(where: { series.contains("\"\($0)\"") })
            {
                #expect(before[series] == value, "\(series)")
            }
        }
    }

    /// Unknown params are ignored, as for every method; params that are not
    /// an object are refused.
    @Test func paramsAreAnObjectOrNothing() throws {
        try withDaemon { _, rpc in
            #expect(try rpc.call("sys.metrics", ["unknown": .int(1)])["result"] != nil)
            try rpc.send(#"{"jsonrpc":"2.0","id":7,"method":"sys.metrics","params":[1]}"# + "\n")
            let refused = try rpc.readResponse()
            #expect(refused.errorCode == -32602 && refused.errorField == "params", "\(refused)")
        }
    }

    @Test(.enabled(if: getuid() == 0, "needs root to drop to another uid"))
    func aPeerThatIsNoAdminIsRefused() throws {
        try withDaemon { daemon, rpc in
            let answer = try callAsUser(
                uid: 65534, socketPath: daemon.socketPath,
                request: RPCConnection.requestLine(id: .int(1), method: "sys.metrics", params: nil))
            #expect(answer.errorCode == 403 && answer.errorReason == "forbidden", "\(answer)")
            // Counted as a forbidden sys.metrics.
            let samples = try MetricsTests.samples(try rpc.result("sys.metrics"))
            #expect(samples[MetricsTests.requests("sys.metrics", "forbidden")] == 1)
        }
    }
}
