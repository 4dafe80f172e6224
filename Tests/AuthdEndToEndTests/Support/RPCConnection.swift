import AuthCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking client over the daemon's Unix socket: raw lines in and out,
/// plus `call` for one request and its answer. Reads time out after 30 s
/// so a broken daemon fails a test instead of hanging the suite.
final class RPCConnection: @unchecked Sendable {
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var nextID = 1

    init(path: String, timeoutSeconds: Int = 30) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DaemonError("socket() failed") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in pathBytes.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let error = errno
            // deinit runs for a fully initialised object that throws: let it
            // close the descriptor, exactly once.
            throw DaemonError("connect(\(path)) failed: errno \(error)")
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Closes once: a second close could hit a descriptor number another
    /// test's socket has since been given.
    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Half-closes: no more requests, answers still wanted (as `socat` does).
    func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

    deinit { close() }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw DaemonError("send failed: errno \(errno)")
            }
            offset += written
        }
    }

    /// The next line, without its newline; nil at end of stream.
    func readLine() throws -> String? {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return nil }
            if count < 0 {
                if errno == EINTR { continue }
                throw DaemonError("recv failed or timed out: errno \(errno)")
            }
            buffer.append(contentsOf: chunk[..<count])
        }
    }

    func readResponse() throws -> JSONObject {
        guard let line = try readLine() else { throw DaemonError("connection closed") }
        guard let object = try JSONParser.parse(line).objectValue else { throw DaemonError("not an object: \(line)") }
        return object
    }

    static func requestLine(id: JSONValue?, method: String, params: JSONObject?) -> String {
        var request: JSONObject = ["jsonrpc": .string("2.0")]
        if let id { request["id"] = id }
        request["method"] = .string(method)
        if let params { request["params"] = .object(params) }
        return JSONWriter.encodeString(.object(request)) + "\n"
    }

    /// Sends one request and returns its whole response object.
    func call(_ method: String, _ params: JSONObject? = nil) throws -> JSONObject {
        let id = nextID
        nextID += 1
        try send(RPCConnection.requestLine(id: .int(id), method: method, params: params))
        let response = try readResponse()
        guard response["id"] == .int(id) else { throw DaemonError("id mismatch: \(response)") }
        return response
    }

    /// The `result` of a call, or a thrown description of its error.
    func result(_ method: String, _ params: JSONObject? = nil) throws -> JSONObject {
        let response = try call(method, params)
        guard let result = response["result"]?.objectValue else {
            throw DaemonError("\(method) failed: \(JSONWriter.encodeString(.object(response)))")
        }
        return result
    }
}

extension JSONObject {
    /// `error.data.reason` of a response.
    var errorReason: String? { self["error"]?.objectValue?["data"]?.objectValue?["reason"]?.stringValue }
    var errorCode: Int64? { self["error"]?.objectValue?["code"]?.int64Value }
    var errorField: String? { self["error"]?.objectValue?["data"]?.objectValue?["field"]?.stringValue }
    var retryAfter: Int64? { self["error"]?.objectValue?["data"]?.objectValue?["retry_after"]?.int64Value }

    func string(_ key: String) -> String? { self[key]?.stringValue }
}
