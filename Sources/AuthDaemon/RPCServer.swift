import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The listening Unix socket: bound by us (`--listen`) or adopted from
/// systemd, each accepted connection getting its own pipeline.
final class RPCServer: Sendable {
    enum Listen: Sendable {
        case path(String, mode: mode_t)
        case inherited(Int32)
    }

    let group: MultiThreadedEventLoopGroup
    let channel: Channel
    let connections: ConnectionRegistry
    let listen: Listen

    init(
        listen: Listen, service: AuthService, maximumLineBytes: Int, maximumInFlight: Int, idleTimeout: Int64,
        threads: Int
    ) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let connections = ConnectionRegistry()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.maxMessagesPerRead, value: 64)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        IdleStateHandler(readTimeout: .seconds(idleTimeout)))
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineFrameDecoder(maximumLineBytes: maximumLineBytes)))
                    try channel.pipeline.syncOperations.addHandler(
                        RPCConnectionHandler(
                            service: service, maximumInFlight: maximumInFlight, connections: connections))
                }
            }
        do {
            switch listen {
            case .path(let path, let mode):
                channel = try bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
                chmod(path, mode)
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
        if case .path(let path, _) = listen { unlink(path) }
    }

    func closeConnections() {
        for future in connections.closeAll() { try? future.wait() }
    }

    func shutdown() {
        try? group.syncShutdownGracefully()
    }
}
