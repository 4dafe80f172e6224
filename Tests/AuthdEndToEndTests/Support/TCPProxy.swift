import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP proxy the test controls, from a loopback port to `target`, so
/// that one daemon can be cut off from the database while the others are
/// not. `cut()` makes it forward nothing in either direction and keeps every
/// socket open, as a network dropping packets does: there is no reset and
/// no error, and only timeouts notice. Bytes sent during the cut wait in the
/// sockets, as TCP retransmissions would. `restore()` forwards again.
final class TCPProxy: @unchecked Sendable {
    let port: Int
    private let target: Int
    private let listener: Int32
    private let condition = NSCondition()
    private var isCut = false
    private var stopped = false
    private var sockets: [Int32] = []

    init(toLoopbackPort target: Int) throws {
        self.target = target
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw DaemonError("socket: \(errno)") }
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            close(listener)
            throw DaemonError("bind/listen: \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    func cut() { set(cut: true) }
    func restore() { set(cut: false) }

    /// Stops accepting and ends every connection. Descriptors are only shut
    /// down here, never closed under a thread that may still use them: the
    /// accept loop closes the listener as it leaves, and the forwarded
    /// connections' few descriptors last as long as the test process.
    func stop() {
        condition.lock()
        stopped = true
        isCut = false
        let all = sockets
        sockets = []
        condition.broadcast()
        condition.unlock()
        shutdown(listener, Int32(SHUT_RDWR))
        for descriptor in all { shutdown(descriptor, Int32(SHUT_RDWR)) }
    }

    deinit { stop() }

    private func set(cut: Bool) {
        condition.lock()
        isCut = cut
        condition.broadcast()
        condition.unlock()
    }

    /// Waits while the link is cut; false once stopped.
    private func waitForLink() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while isCut && !stopped { condition.wait() }
        return !stopped
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                close(listener)
                return
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: target)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            condition.lock()
            let keep = !stopped && connected == 0
            if keep { sockets += [client, server] }
            condition.unlock()
            guard keep else {
                close(client)
                close(server)
                continue
            }
            Thread.detachNewThread { [self] in pump(from: client, to: server) }
            Thread.detachNewThread { [self] in pump(from: server, to: client) }
        }
    }

    private func pump(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while waitForLink() {
            let count = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            guard waitForLink() else { break }
            var sent = 0
            while sent < count {
                let written = buffer.withUnsafeBytes {
                    send(destination, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL))
                }
                guard written > 0 else { break }
                sent += written
            }
            if sent < count { break }
        }
        // One side ended: end the other, as a real connection would.
        shutdown(destination, Int32(SHUT_WR))
        shutdown(source, Int32(SHUT_RD))
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
