import AuthCore
import Foundation
import Testing

@Suite(.timeLimit(.minutes(3))) struct TransportTests {
    @Test func hundredsOfPipelinedRequestsAreAllAnsweredAndMatchedByID() throws {
        try withDaemon { _, rpc in
            try rpc.createUser("p@example.com")
            let tokens = try rpc.login("p@example.com")
            var lines = ""
            let count = 600
            for index in 0..<count {
                switch index % 3 {
                case 0:
                    lines += RPCConnection.requestLine(
                        id: .string("v\(index)"), method: "token.verify", params: ["token": .string(tokens.access)])
                case 1: lines += RPCConnection.requestLine(id: .int(index), method: "sys.health", params: nil)
                default:
                    lines += RPCConnection.requestLine(
                        id: .int(index), method: "token.verify", params: ["token": .string("bad")])
                }
            }
            try rpc.send(lines)
            var seen = Set<String>()
            for _ in 0..<count {
                let response = try rpc.readResponse()
                let id = JSONWriter.encodeString(response["id"] ?? .null)
                #expect(seen.insert(id).inserted)
                if case .string(let text)? = response["id"] {
                    #expect(text.hasPrefix("v"))
                    #expect(response["result"] != nil)
                } else if let number = response["id"]?.int64Value {
                    #expect((number % 3 == 1) == (response["result"] != nil))
                }
            }
            #expect(seen.count == count)
        }
    }

    @Test func slowJobsDoNotHoldBackFastOnesOnTheSameConnection() throws {
        try withDaemon(flags: ["bcrypt-cost": "12"]) { _, rpc in
            try rpc.send(
                RPCConnection.requestLine(
                    id: .string("slow"), method: "auth.login",
                    params: ["email": .string("x@example.com"), "password": .string("whatever1")])
                    + RPCConnection.requestLine(id: .string("fast"), method: "sys.health", params: nil))
            // Answers come back out of order: the health check first.
            #expect(try rpc.readResponse()["id"] == .string("fast"))
            #expect(try rpc.readResponse()["id"] == .string("slow"))
        }
    }

    @Test func manyConcurrentConnections() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("c@example.com")
            let tokens = try rpc.login("c@example.com")
            let failures = Counter()
            DispatchQueue.concurrentPerform(iterations: 40) { worker in
                do {
                    let connection = try RPCConnection(path: daemon.socketPath)
                    for index in 0..<50 {
                        let response = try connection.call("token.verify", ["token": .string(tokens.access)])
                        if response["result"] == nil { failures.add("\(worker)/\(index)") }
                    }
                } catch {
                    failures.add("\(worker): \(error)")
                }
            }
            #expect(failures.values.isEmpty, "\(failures.values.prefix(3))")
        }
    }

    @Test func garbageIsAnsweredAndTheConnectionStaysUsable() throws {
        try withDaemon { _, rpc in
            let cases: [(String, Int64, String)] = [
                ("this is not json", -32700, "parse_error"),
                ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":", -32700, "parse_error"),
                ("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sys.health\"}]", -32600, "batch_not_supported"),
                ("{\"id\":2,\"method\":\"sys.health\"}", -32600, "invalid_request"),
                ("\"just a string\"", -32600, "invalid_request"),
                ("{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"method\":\"sys.health\"}", -32600, "invalid_request"),
            ]
            for (line, code, reason) in cases {
                try rpc.send(line + "\n")
                let response = try rpc.readResponse()
                #expect(response.errorCode == code, "\(line)")
                #expect(response.errorReason == reason, "\(line)")
            }
            // Invalid UTF-8 is a parse error with id null.
            try rpc.send([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D, 0x0A])
            let invalid = try rpc.readResponse()
            #expect(invalid.errorCode == -32700)
            #expect(invalid["id"] == .null)
            #expect(try rpc.result("sys.health").string("status") == "ok")
        }
    }

    @Test func notificationsGetNoAnswerEmptyLinesAreIgnoredAndCRLFIsAccepted() throws {
        try withDaemon { _, rpc in
            try rpc.send(
                "\n\r\n" + RPCConnection.requestLine(id: nil, method: "sys.health", params: nil)
                    + RPCConnection.requestLine(id: nil, method: "no.such.method", params: nil)
                    + "{\"jsonrpc\":\"2.0\",\"id\":\"crlf\",\"method\":\"sys.health\"}\r\n")
            let response = try rpc.readResponse()
            #expect(response["id"] == .string("crlf"))
            #expect(response["result"] != nil)
        }
    }

    @Test func aHalfClosedConnectionStillGetsEveryAnswer() throws {
        try withDaemon(flags: ["bcrypt-cost": "12"]) { _, rpc in
            try rpc.send(
                RPCConnection.requestLine(
                    id: .int(1), method: "user.create",
                    params: ["email": .string("half@example.com"), "password": .string(defaultPassword)])
                    + RPCConnection.requestLine(id: .int(2), method: "sys.health", params: nil))
            rpc.shutdownWrite()
            var ids: Set<Int64> = []
            while let line = try rpc.readLine() {
                let response = try JSONParser.parse(line).objectValue!
                #expect(response["result"] != nil)
                ids.insert(response["id"]?.int64Value ?? 0)
            }
            #expect(ids == [1, 2])
        }
    }

    @Test func anOverlongLineIsRefusedOnceAndTheConnectionClosed() throws {
        try withDaemon { daemon, rpc in
            let big =
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sys.health\",\"params\":{\"pad\":\""
                + String(repeating: "a", count: 70_000) + "\"}}\n"
            try? rpc.send(big)
            let response = try rpc.readResponse()
            #expect(response.errorCode == -32600)
            #expect(response.errorReason == "line_too_long")
            #expect(response["id"] == .null)
            #expect(try rpc.readLine() == nil)
            // Refused as soon as the limit passes, without waiting for a newline.
            let stalled = try daemon.connect()
            try? stalled.send(String(repeating: "b", count: 65_537))
            #expect(try stalled.readResponse().errorReason == "line_too_long")
            // A line of exactly 64 KiB is accepted (and is simply not JSON here).
            let exact = try daemon.connect()
            try exact.send(String(repeating: "c", count: 65_536) + "\n")
            #expect(try exact.readResponse().errorReason == "parse_error")
            // The daemon serves others all along.
            #expect(try daemon.connect().result("sys.health").string("status") == "ok")
        }
    }

    @Test func idleAndStalledConnectionsAreClosedButWaitingOnesAreNot() throws {
        try withDaemon(flags: ["idle-timeout": "2", "bcrypt-cost": "12", "workers": "1"]) { daemon, _ in
            let idle = try daemon.connect()
            let stalled = try daemon.connect()
            try stalled.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"meth")
            // A client waiting on slow answers (queued hashes) is not idle.
            var lines = ""
            for index in 0..<8 {
                lines += RPCConnection.requestLine(
                    id: .int(index), method: "auth.login",
                    params: [
                        "email": .string("w\(index)@example.com"), "password": .string("whatever1"),
                        "client": .string("c\(index)"),
                    ])
            }
            let rpc = try daemon.connect()
            try rpc.send(lines)
            #expect(try idle.readLine() == nil)  // closed by the daemon
            #expect(try stalled.readLine() == nil)
            for _ in 0..<8 { #expect(try rpc.readResponse().errorReason == "invalid_credentials") }
            #expect(try daemon.connect().result("sys.health").string("status") == "ok")
        }
    }

    @Test func backpressureHoldsReadingButLosesNothing() throws {
        try withDaemon(flags: ["max-in-flight": "2", "workers": "1"]) { _, rpc in
            var lines = ""
            for index in 0..<8 {
                lines += RPCConnection.requestLine(
                    id: .int(index), method: "auth.login",
                    params: [
                        "email": .string("x\(index)@example.com"), "password": .string("whatever1"),
                        "client": .string("c\(index)"),
                    ])
            }
            for index in 8..<20 {
                lines += RPCConnection.requestLine(id: .int(index), method: "sys.health", params: nil)
            }
            try rpc.send(lines)
            var ids = Set<Int64>()
            for _ in 0..<20 {
                let response = try rpc.readResponse()
                #expect(response.errorReason == nil || response.errorReason == "invalid_credentials")
                if let id = response["id"]?.int64Value { ids.insert(id) }
            }
            #expect(ids == Set(0..<20))
        }
    }
}

/// Thread-safe collection of failure notes for concurrent checks.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ item: String) { lock.lock(); items.append(item); lock.unlock() }
    var values: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
