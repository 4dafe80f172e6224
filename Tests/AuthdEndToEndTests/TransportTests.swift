import AuthCore
import Foundation
import Testing

@Suite(.timeLimit(.minutes(5))) struct TransportTests {
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

    /// Answers made in one read are written together at its end: an
    /// over-long line after good ones in the same write still gets every
    /// answer out first, then its own refusal, then the close.
    @Test func goodLinesThenAnOverlongOneInOneWriteAreAllAnsweredBeforeTheClose() throws {
        try withDaemon { _, rpc in
            var lines = ""
            for index in 1...5 {
                lines += RPCConnection.requestLine(id: .int(index), method: "sys.health", params: nil)
            }
            lines += "{\"pad\":\"" + String(repeating: "a", count: 70_000) + "\"}\n"
            try? rpc.send(lines)
            var ids: [Int64] = []
            for _ in 1...5 { ids.append(try rpc.readResponse()["id"]?.int64Value ?? 0) }
            #expect(ids.sorted() == [1, 2, 3, 4, 5])
            #expect(try rpc.readResponse().errorReason == "line_too_long")
            #expect(try rpc.readLine() == nil)
        }
    }

    /// Tens of thousands of tiny lines in a few reads (each answered inline
    /// with an error) are all answered, in parts, and the daemon serves on.
    @Test func aFloodOfTinyLinesInOneWriteIsAnsweredInFull() throws {
        try withDaemon { daemon, rpc in
            let count = 40_000
            let sender = Thread { try? rpc.send(String(repeating: "1\n", count: count)) }
            sender.start()
            var answered = 0
            while answered < count, let line = try rpc.readLine() {
                #expect(line.contains("invalid_request") || line.contains("-32600"))
                answered += 1
            }
            #expect(answered == count)
            #expect(try daemon.connect().result("sys.health").string("status") == "ok")
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
        try withDaemon(flags: ["max-in-flight": "2", "workers": "1", "bcrypt-cost": "12"]) { daemon, _ in
            // Raw non-blocking socket: while two slow logins are in flight the
            // daemon must stop reading, so the kernel's buffers fill and a
            // send would block, long before 8 MiB of requests are taken.
            let fd = try rawConnection(to: daemon.socketPath)
            defer { close(fd) }
            var logins = ""
            for index in 0..<2 {
                logins += RPCConnection.requestLine(
                    id: .int(Int64(index)), method: "auth.login",
                    params: ["email": .string("x\(index)@example.com"), "password": .string("whatever1")])
            }
            let health = Array(RPCConnection.requestLine(id: .int(9), method: "sys.health", params: nil).utf8)
            var payload = Array(logins.utf8)
            while payload.count < 8 << 20 { payload += health }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var sent = 0
            while sent < payload.count {
                let written = payload.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, 0) }
                if written < 0 && errno == EINTR { continue }
                if written < 0 { break }  // EAGAIN: the daemon is not reading
                sent += written
            }
            #expect(sent < payload.count, "the daemon read 8 MiB while its in-flight limit was reached")
            // Finish the line cut in half, then every request sent is answered.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            let loginBytes = logins.utf8.count
            let partial =
                sent < loginBytes
                ? loginBytes - sent : (health.count - (sent - loginBytes) % health.count) % health.count
            var finished = 0
            while finished < partial {
                let written = payload.withUnsafeBytes {
                    send(fd, $0.baseAddress! + sent + finished, partial - finished, 0)
                }
                if written < 0 && errno == EINTR { continue }
                try #require(written > 0)
                finished += written
            }
            sent += partial
            shutdown(fd, Int32(SHUT_WR))
            let expected = sent <= loginBytes ? 2 : 2 + (sent - loginBytes) / health.count
            var received = 0
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var loginAnswers = 0
            var carry: [UInt8] = []
            var endedBy = "EOF"
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                // Other tests' daemons exiting send this process SIGCHLD.
                if count < 0 && errno == EINTR { continue }
                if count < 0 { endedBy = "errno \(errno)" }
                if count <= 0 { break }
                carry += buffer[0..<count]
                while let newline = carry.firstIndex(of: 0x0A) {
                    let line = Array(carry[..<newline])
                    carry.removeFirst(newline + 1)
                    received += 1
                    if let object = try? JSONParser.parse(line).objectValue, object["id"] != .int(9) {
                        loginAnswers += 1
                    }
                }
            }
            let diagnosis: Comment =
                "ended by \(endedBy); daemon running: \(daemon.isRunning); stderr: \(daemon.stderr.suffix(2000))"
            #expect(loginAnswers == 2, diagnosis)
            #expect(received == expected, diagnosis)
        }
    }

    @Test func aHalfCloseWaitsForTheAnswersQueuedBehindASlowReader() throws {
        try withDaemon { daemon, _ in try sendAllThenReadSlowly(daemon) }
    }

    private func sendAllThenReadSlowly(_ daemon: DaemonProcess) throws {
        // A client that sends its requests, shuts down its writing side
        // and then reads slower than the daemon answers: when the daemon
        // reaches the end of the input, answers are still queued in it,
        // and a close at that moment dropped them (seen as a short read).
        let fd = try rawConnection(to: daemon.socketPath)
        defer { close(fd) }
        let count = 6000
        let payload: [UInt8] = (0..<count).flatMap { index in
            Array(RPCConnection.requestLine(id: .int(Int64(index)), method: "sys.health", params: nil).utf8)
        }
        let writer = DispatchQueue(label: "slow-reader-writer")
        let sentAll = DispatchSemaphore(value: 0)
        let sendFailed = Counter()
        writer.async {
            var sent = 0
            while sent < payload.count {
                let written = payload.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, 0) }
                if written < 0 && errno == EINTR { continue }
                if written <= 0 {
                    sendFailed.add("send failed after \(sent) bytes: errno \(errno)")
                    break
                }
                sent += written
            }
            shutdown(fd, Int32(SHUT_WR))
            sentAll.signal()
        }
        var ids = Set<Int64>()
        var buffer = [UInt8](repeating: 0, count: 4096)
        var carry: [UInt8] = []
        while true {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            carry += buffer[0..<got]
            while let newline = carry.firstIndex(of: 0x0A) {
                let answer = try? JSONParser.parse(Array(carry[..<newline])).objectValue
                if let id = answer?["id"]?.int64Value { ids.insert(id) }
                carry.removeFirst(newline + 1)
            }
            usleep(3000)
        }
        sentAll.wait()
        #expect(sendFailed.values.isEmpty, "\(sendFailed.values)")
        #expect(ids.count == count, "answers received: \(ids.count) of \(count)")
        #expect(daemon.isRunning)
    }

    /// A raw blocking Unix socket connected to the daemon. CLOEXEC: a daemon
    /// another test spawns meanwhile must not inherit it.
    private func rawConnection(to path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if connected != 0 { close(fd) }
        try #require(connected == 0)
        return fd
    }
}

/// Thread-safe collection of failure notes for concurrent checks.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ item: String) { lock.lock(); items.append(item); lock.unlock() }
    var values: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
