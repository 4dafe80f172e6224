import AuthCore
import Foundation

extension Scenarios {
    /// Two daemons on one PostgreSQL database (as on two hosts): a session
    /// is opened on A and seen verifying on B; A logs it out; how long from
    /// A's answer until B's `token.verify` refuses the token. B is polled
    /// back to back, so the figure is the feed's delay plus one verify.
    mutating func revocation() throws {
        guard let databaseURL else {
            report.note("revocation: skipped (needs --database-url of an empty PostgreSQL database)")
            return
        }
        let secrets = [
            "JWT_SECRET": "authbench-shared-access-secret-0123456789",
            "JWT_REFRESH_SECRET": "authbench-shared-refresh-secret-0123456789",
        ]
        let flags = ["--bcrypt-cost", "10", "--database-url", databaseURL] + sessionCapFlags
        let a = try DaemonUnderTest(binary: binary)
        let b = try DaemonUnderTest(binary: binary)
        defer {
            a.remove()
            b.remove()
        }
        try a.start(flags, environment: secrets)
        try b.start(flags, environment: secrets)
        let email = "revoke-\(getpid())@example.com"
        _ = try call(a.socket, "user.create", ["email": .string(email), "password": .string(Scenarios.password)])
        let rounds = quick ? 20 : 500
        var fromAnswer = RunResult(name: "revocation on A seen by B, from A's answer")
        var fromRequest = RunResult(name: "revocation on A seen by B, from A's request")
        let onA = try PipelinedConnection(path: a.socket)
        let onB = try PipelinedConnection(path: b.socket)
        func ask(_ connection: PipelinedConnection, _ method: String, _ params: JSONObject) -> JSONObject? {
            let request: JSONObject = [
                "jsonrpc": .string("2.0"), "id": .int(1), "method": .string(method), "params": .object(params),
            ]
            connection.send(Array((JSONWriter.encodeString(.object(request)) + "\n").utf8))
            guard let line = connection.readLines().first else { return nil }
            return (try? JSONParser.parse(Array(line)))?.objectValue
        }
        func reason(_ answer: JSONObject?) -> String? {
            answer?["error"]?.objectValue?["data"]?.objectValue?["reason"]?.stringValue
        }
        let started = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<rounds {
            guard
                let login = ask(
                    onA, "auth.login", ["email": .string(email), "password": .string(Scenarios.password)])?[
                        "result"]?.objectValue,
                let access = login["access_token"]?.stringValue, let refresh = login["refresh_token"]?.stringValue
            else {
                fromAnswer.errors += 1
                continue
            }
            // B must know the session first (its feed brings it).
            var known = false
            for _ in 0..<10_000 {
                if ask(onB, "token.verify", ["token": .string(access)])?["result"] != nil {
                    known = true
                    break
                }
                usleep(100)
            }
            guard known else {
                fromAnswer.errors += 1
                continue
            }
            let sent = DispatchTime.now().uptimeNanoseconds
            guard ask(onA, "auth.logout", ["refresh_token": .string(refresh)])?["result"] != nil else {
                fromAnswer.errors += 1
                continue
            }
            let answered = DispatchTime.now().uptimeNanoseconds
            var refused = false
            while DispatchTime.now().uptimeNanoseconds - answered < 5_000_000_000 {
                if reason(ask(onB, "token.verify", ["token": .string(access)])) == "session_revoked" {
                    refused = true
                    break
                }
            }
            let seen = DispatchTime.now().uptimeNanoseconds
            guard refused else {
                fromAnswer.errors += 1
                continue
            }
            fromAnswer.latencies.append(Int((seen - answered) / 1_000))
            fromRequest.latencies.append(Int((seen - sent) / 1_000))
            fromAnswer.requests += 1
            fromRequest.requests += 1
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        fromAnswer.seconds = elapsed
        fromRequest.seconds = elapsed
        report.add(fromAnswer, target: "p99 <= 100 ms")
        report.add(fromRequest)
    }
}
