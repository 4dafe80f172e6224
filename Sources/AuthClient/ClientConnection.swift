import AuthJSON
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One Unix-socket connection shared by many concurrent calls: requests are
/// written under a lock, a reader thread reads answer lines and resumes the
/// call waiting for each id. When the connection breaks, every waiting call
/// fails with `unreachable` and the connection is marked dead.
final class ClientConnection: @unchecked Sendable {
    typealias Completion = @Sendable (Result<JSONValue, AuthError>) -> Void

    private let fd: Int32
    private let writeLock = NSLock()
    private let stateLock = NSLock()
    private var pending: [Int: Completion] = [:]
    private var dead = false

    init(path: String) throws(AuthError) {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .unreachable("socket(): errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw .unreachable("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in pathBytes.enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let error = String(cString: strerror(errno))
            Glibc.close(fd)
            throw .unreachable("cannot connect to \(path): \(error)")
        }
        let reader = Thread { [self] in readLoop() }
        reader.name = "AuthClient reader"
        reader.start()
    }

    var isAlive: Bool { stateLock.locked { !dead } }

    /// Sends one request line; `completion` runs once with the answer.
    func send(id: Int, line: [UInt8], completion: @escaping Completion) {
        let registered = stateLock.locked { () -> Bool in
            if dead { return false }
            pending[id] = completion
            return true
        }
        guard registered else {
            completion(.failure(.unreachable("connection closed")))
            return
        }
        let written = writeLock.locked { () -> Bool in
            // The reader closes the descriptor holding writeLock too; a dead
            // connection's number may already belong to another socket.
            if !isAlive { return false }
            var offset = 0
            while offset < line.count {
                let count = line.withUnsafeBytes {
                    Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
                }
                if count < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += count
            }
            return true
        }
        if !written { fail(id: id, with: .unreachable("write failed")) }
    }

    /// Fails one waiting call (a timeout); a late answer is then dropped.
    func fail(id: Int, with error: AuthError) {
        let completion = stateLock.locked { pending.removeValue(forKey: id) }
        completion?(.failure(error))
    }

    /// Ends the connection; the reader thread then closes the descriptor.
    func close() {
        stateLock.locked {
            // Once the reader has closed the descriptor its number may belong
            // to another socket: never touch it again.
            if !dead { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    private func readLoop() {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            buffer.append(contentsOf: chunk[0..<count])
            while let newline = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                deliver(line)
            }
        }
        let waiting = writeLock.locked {
            stateLock.locked { () -> [Completion] in
                dead = true
                Glibc.close(fd)
                defer { pending.removeAll() }
                return Array(pending.values)
            }
        }
        for completion in waiting { completion(.failure(.unreachable("connection closed by authd"))) }
    }

    private func deliver(_ line: [UInt8]) {
        guard case .object(let response)? = try? JSONParser.parse(line),
            let id = response["id"]?.int64Value
        else { return }
        guard let completion = stateLock.locked({ pending.removeValue(forKey: Int(id)) }) else { return }
        if let result = response["result"] {
            completion(.success(result))
        } else if case .object(let error)? = response["error"] {
            let data = error["data"]?.objectValue
            completion(
                .failure(
                    AuthError(
                        code: error["code"]?.int64Value, reason: data?["reason"]?.stringValue,
                        field: data?["field"]?.stringValue, retryAfter: data?["retry_after"]?.int64Value.map(Int.init)
                    )))
        } else {
            completion(.failure(.badResponse("neither result nor error")))
        }
    }
}

extension NSLock {
    func locked<R>(_ body: () throws -> R) rethrows -> R {
        lock()
        defer { unlock() }
        return try body()
    }
}
