import NIOCore
import NIOPosix

/// The transport's own limit: a SwiftNIO server on the same kind of socket
/// that answers each line with a line of the same size, doing nothing else.
final class EchoServer {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
    let channel: Channel

    init(path: String) throws {
        channel = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LineEcho())
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
    }

    func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    private final class LineEcho: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private var pending = ByteBuffer()
        private var wrote = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            pending.writeBuffer(&incoming)
            while let newline = pending.readableBytesView.firstIndex(of: 0x0A) {
                let length = newline - pending.readerIndex + 1
                let line = pending.readSlice(length: length)!
                context.write(wrapOutboundOut(line), promise: nil)
                wrote = true
            }
            pending.discardReadBytes()
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            if wrote {
                wrote = false
                context.flush()
            }
        }
    }
}
