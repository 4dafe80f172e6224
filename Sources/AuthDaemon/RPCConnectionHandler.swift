import AuthCore
import AuthServiceCore
import NIOCore

/// One connection: decodes requests, hands them to the service as
/// independent jobs, and writes answers as they complete (any order,
/// matched by id). Its rules (in-flight limit, read pausing, half-close,
/// idle timeout, close when done) are `ConnectionStateMachine`'s; this
/// handler only reports events to it and carries out what it says. A bad
/// line is answered and the connection goes on; only an over-long line
/// closes it.
final class RPCConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = LineFrame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let service: AuthService
    private let connections: ConnectionRegistry
    private var state: ConnectionStateMachine<ByteBuffer>
    private var peer = PeerCredentials.unknown
    /// Whether the connection has closed (not half-closed: `socat -t5` shuts
    /// down its writing side and still waits for the answer). Made once.
    private var isGone: @Sendable () -> Bool = { true }
    private var context: ChannelHandlerContext?
    private var idleTimer: RepeatedTask?
    private var inReadBurst = false
    private var burstTime: Int64?
    private var needsFlush = false
    /// Answers made inline during a read burst, written as one buffer when
    /// the burst ends (no buffer and no write of their own each).
    private var burstAnswers: [UInt8] = []
    private var draining = false

    init(service: AuthService, maximumInFlight: Int, idleTimeout: Int64, connections: ConnectionRegistry) {
        self.service = service
        self.connections = connections
        self.state = ConnectionStateMachine(
            maximumInFlight: maximumInFlight, idleTimeout: idleTimeout, now: RPCConnectionHandler.now())
    }

    /// Monotonic seconds: idle times must not jump with the wall clock.
    private static func now() -> Int64 { Int64(MonotonicClock.microseconds() / 1_000_000) }

    /// `now()`, read once per read burst (the rules count whole seconds;
    /// a burst's lines and inline answers take microseconds).
    private func burstNow() -> Int64 {
        guard inReadBurst else { return RPCConnectionHandler.now() }
        if let burstTime { return burstTime }
        let now = RPCConnectionHandler.now()
        burstTime = now
        return now
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        peer = PeerCredentials.read(from: context.channel)
        let channel = context.channel
        isGone = { !channel.isActive }
        guard connections.add(context.channel, uid: peer.uid, isAdmin: service.isAdminPeer(peer)) else {
            // Over a connection limit: one answer, then closed at once (never
            // left waiting in the backlog, holding a descriptor).
            state.closeAfterError(now: RPCConnectionHandler.now())
            writeThenClose(RPCResponse.failure(id: .null, error: .busy(retryAfter: 1)), context: context)
            service.connectionRefused(peer)
            return
        }
        startIdleChecks(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        connections.remove(context.channel, uid: peer.uid)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !state.isClosing else { return }
        switch unwrapInboundIn(data) {
        case .tooLong:
            state.closeAfterError(now: RPCConnectionHandler.now())
            writeThenClose(RPCResponse.failure(id: .null, error: .lineTooLong), context: context)
        case .line(let line):
            inReadBurst = true
            if let ready = state.lineArrived(line, now: burstNow()) { process(ready, context: context) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadBurst = false
        burstTime = nil
        writeBurstAnswers(context: context)
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        // Paused while answers pile up unread (a client that never reads):
        // memory stays bounded by NIO's write buffer high mark.
        if state.readRequested(writable: context.channel.isWritable) { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            state.inputDidClose()
            closeIfDone(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if state.shouldResumeReading(writable: context.channel.isWritable) { context.read() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // This connection fails alone; the server goes on.
        inReadBurst = false
        burstTime = nil
        burstAnswers = []
        context.close(promise: nil)
    }

    private func startIdleChecks(context: ChannelHandlerContext) {
        let period = TimeAmount.seconds(max(1, min(state.idleTimeout / 4, 5)))
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        idleTimer = loop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            let handler = bound.value
            guard let context = handler.context else { return }
            // Idle, or stalled half-way through a line, or closing and its
            // answers not taken; a client waiting for its answers (requests
            // in flight) is not idle.
            if handler.state.idleCheck(now: RPCConnectionHandler.now()) { context.close(promise: nil) }
        }
    }

    private func process(_ line: ByteBuffer, context: ChannelHandlerContext) {
        let decoded = line.withUnsafeReadableBytes { RPCRequest.decode(line: $0) }
        switch decoded {
        case .failure(let rejection):
            if rejection.answer {
                send { RPCResponse.appendFailure(id: rejection.id ?? .null, error: rejection.error, to: &$0) }
            }
        case .success(let request):
            state.requestStarted()
            let loop = context.eventLoop
            let bound = NIOLoopBound(self, eventLoop: loop)
            let id = request.id
            service.handle(request, peer: peer, isGone: isGone) { result in
                if loop.inEventLoop {
                    bound.value.complete(id: id, result: result)
                } else {
                    loop.execute { bound.value.complete(id: id, result: result) }
                }
            }
        }
    }

    private func complete(id: JSONValue?, result: Result<JSONValue, AuthError>) {
        state.requestCompleted(now: burstNow())
        if let id {
            switch result {
            case .success(let value): send { RPCResponse.appendSuccess(id: id, result: value, to: &$0) }
            case .failure(let error): send { RPCResponse.appendFailure(id: id, error: error, to: &$0) }
            }
        }
        guard let context else { return }
        drainWaitingLines(context: context)
    }

    /// Starts waiting lines while there is room, in a loop: a line answered
    /// inline completes (and would drain again) from inside this loop, so a
    /// nested call just returns and the loop goes on. Recursing instead ran
    /// one stack frame chain per waiting line (thousands: a stack overflow).
    private func drainWaitingLines(context: ChannelHandlerContext) {
        guard !draining else { return }
        draining = true
        while let line = state.nextWaitingLine() { process(line, context: context) }
        draining = false
        if state.shouldResumeReading(writable: context.channel.isWritable) { context.read() }
        closeIfDone(context: context)
    }

    private func closeIfDone(context: ChannelHandlerContext) {
        guard state.shouldCloseWhenDone(now: burstNow()) else { return }
        writeBurstAnswers(context: context)
        // Closed only once every answer is written: a close fails whatever
        // is still queued behind a slow reader. Writes complete in order, so
        // an empty write's completion means all before it are out.
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    private func writeThenClose(_ bytes: [UInt8], context: ChannelHandlerContext) {
        writeBurstAnswers(context: context)
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Writes an answer (`append` writes its line): one of a read burst's
    /// goes with the others when the burst ends, any other is written and
    /// flushed at once.
    private func send(_ append: (inout [UInt8]) -> Void) {
        guard let context, context.channel.isActive else { return }
        if inReadBurst {
            append(&burstAnswers)
            needsFlush = true
            // A burst of many small lines (64 KiB of "1\n" is 32,768 error
            // answers) goes out in parts: the write buffer's limits, which
            // pause reading, then see it as before.
            if burstAnswers.count >= Self.burstWriteBytes { writeBurstAnswers(context: context) }
            return
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        append(&bytes)
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Writes the read burst's answers (not flushed).
    private func writeBurstAnswers(context: ChannelHandlerContext) {
        guard !burstAnswers.isEmpty else { return }
        var buffer = context.channel.allocator.buffer(capacity: burstAnswers.count)
        buffer.writeBytes(burstAnswers)
        // Kept for the next burst unless one burst made it large: an idle
        // connection holds at most 8 KiB.
        if burstAnswers.capacity > Self.keptAnswerBytes {
            burstAnswers = []
        } else {
            burstAnswers.removeAll(keepingCapacity: true)
        }
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    private static let keptAnswerBytes = 8_192
    private static let burstWriteBytes = 65_536
}
