import AuthCore
import NIOCore

/// One connection: decodes requests, hands them to the service as
/// independent jobs, writes answers as they complete (any order, matched
/// by id), and applies backpressure: with `maximumInFlight` requests
/// unanswered it stops reading until answers drain. A bad line is answered
/// and the connection goes on; only an over-long line closes it.
final class RPCConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = LineFrame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let service: AuthService
    private let maximumInFlight: Int
    private let connections: ConnectionRegistry
    private var peer = PeerCredentials.unknown
    private var context: ChannelHandlerContext?
    private var inFlight = 0
    private var queued: [ByteBuffer] = []
    private var readHeld = false
    private var inReadBurst = false
    private var needsFlush = false
    private var closing = false
    /// The peer shut down its writing side: answer what was read, then close.
    private var inputClosed = false

    init(service: AuthService, maximumInFlight: Int, connections: ConnectionRegistry) {
        self.service = service
        self.maximumInFlight = maximumInFlight
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        peer = PeerCredentials.read(from: context.channel)
        connections.add(context.channel)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connections.remove(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        switch unwrapInboundIn(data) {
        case .tooLong:
            closing = true
            let bytes = RPCResponse.failure(id: .null, error: .lineTooLong)
            var buffer = context.channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
        case .line(let line):
            inReadBurst = true
            if inFlight >= maximumInFlight {
                queued.append(line)
            } else {
                process(line, context: context)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadBurst = false
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        // Stop reading while answers pile up unread (a client that never
        // reads): memory stays bounded by NIO's write buffer high mark.
        if inFlight >= maximumInFlight || !queued.isEmpty || !context.channel.isWritable {
            readHeld = true
        } else {
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            closeIfDone()
            return
        }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // Nothing arrived for the idle timeout: an idle client, or one
            // stalled half-way through a line. A client waiting for its
            // answers (requests in flight) is not idle.
            if inFlight == 0 && queued.isEmpty {
                closing = true
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && readHeld && inFlight < maximumInFlight && queued.isEmpty {
            readHeld = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // This connection fails alone; the server goes on.
        context.close(promise: nil)
    }

    private func process(_ line: ByteBuffer, context: ChannelHandlerContext) {
        let decoded = line.withUnsafeReadableBytes { RPCRequest.decode(line: $0) }
        switch decoded {
        case .failure(let rejection):
            if rejection.answer { send(RPCResponse.failure(id: rejection.id ?? .null, error: rejection.error)) }
        case .success(let request):
            inFlight += 1
            let loop = context.eventLoop
            let bound = NIOLoopBound(self, eventLoop: loop)
            let id = request.id
            service.handle(request, peer: peer) { result in
                if loop.inEventLoop {
                    bound.value.complete(id: id, result: result)
                } else {
                    loop.execute { bound.value.complete(id: id, result: result) }
                }
            }
        }
    }

    private func complete(id: JSONValue?, result: Result<JSONValue, AuthError>) {
        inFlight -= 1
        if let id {
            switch result {
            case .success(let value): send(RPCResponse.success(id: id, result: value))
            case .failure(let error): send(RPCResponse.failure(id: id, error: error))
            }
        }
        guard let context else { return }
        while inFlight < maximumInFlight, !queued.isEmpty, !closing {
            process(queued.removeFirst(), context: context)
        }
        if readHeld && inFlight < maximumInFlight && queued.isEmpty && context.channel.isWritable {
            readHeld = false
            context.read()
        }
        closeIfDone()
    }

    private func closeIfDone() {
        guard inputClosed, inFlight == 0, queued.isEmpty, let context, !closing else { return }
        closing = true
        context.flush()
        context.close(promise: nil)
    }

    /// Writes an answer; flushed at the end of the read burst when the
    /// answer was produced inline, else at once.
    private func send(_ bytes: [UInt8]) {
        guard let context, context.channel.isActive else { return }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        if inReadBurst {
            context.write(wrapOutboundOut(buffer), promise: nil)
            needsFlush = true
        } else {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
    }
}
