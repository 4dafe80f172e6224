import AuthCore
import AuthServiceCore
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The listening Unix socket: bound by us (`--listen`) or adopted from
/// systemd, each accepted connection getting its own pipeline.
final class RPCServer: @unchecked Sendable {
    enum Listen: Sendable {
        case path(String, mode: mode_t)
        case inherited(Int32)
    }

    let group: MultiThreadedEventLoopGroup
    let channel: Channel
    let connections: ConnectionRegistry
    let listen: Listen
    /// The device and inode of the socket file we created, so stopping
    /// removes that file and never one another daemon has put there since.
    private(set) var boundInode: (dev_t, ino_t)?

    enum ServerError: Error, CustomStringConvertible {
        case pathInUse(String)
        var description: String {
            switch self {
            case .pathInUse(let path): "another daemon is already serving \(path)"
            }
        }
    }

    init(
        listen: Listen, service: AuthService, maximumLineBytes: Int, maximumInFlight: Int, idleTimeout: Int64,
        connectionLimits: ConnectionAdmission.Limits, threads: Int
    ) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let connections = ConnectionRegistry(limits: connectionLimits)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.maxMessagesPerRead, value: 64)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: maximumLineBytes)))
                    // Only whole, non-empty lines reach it (and count as
                    // activity): a peer sending "\n", or a byte at a time of
                    // a line it never finishes, is idle.
                    try channel.pipeline.syncOperations.addHandler(
                        RPCConnectionHandler(
                            service: service, maximumInFlight: maximumInFlight, idleTimeout: idleTimeout,
                            connections: connections))
                }
            }
        do {
            switch listen {
            case .path(let path, let mode):
                // Another daemon answering on this path keeps it: a stale
                // file from a crash is replaced, a live socket never is.
                if RPCServer.isServed(path) { throw ServerError.pathInUse(path) }
                // The socket gets its mode when bind creates it, before it
                // listens: no moment in which it is more open than asked.
                let previous = umask(0o777 & ~mode)
                defer { umask(previous) }
                channel = try bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
                var info = stat()
                if lstat(path, &info) == 0 { boundInode = (info.st_dev, info.st_ino) }
            case .inherited(let descriptor):
                channel = try bootstrap.withBoundSocket(descriptor).wait()
            }
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        self.group = group
        self.connections = connections
        self.listen = listen
    }

    /// Stops accepting new connections; open ones go on.
    func stopAccepting() {
        try? channel.close().wait()
        if case .path(let path, _) = listen, let boundInode {
            var info = stat()
            if lstat(path, &info) == 0 && info.st_dev == boundInode.0 && info.st_ino == boundInode.1 { unlink(path) }
        }
    }

    /// Whether something accepts connections on the Unix socket at `path`
    /// (a full backlog counts: never blocks).
    static func isServed(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else { return false }
        let fd = socket(
            AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 || errno == EAGAIN
            }
        }
    }

    func closeConnections() {
        for future in connections.closeAll() { try? future.wait() }
    }

    func shutdown() {
        try? group.syncShutdownGracefully()
    }
}
