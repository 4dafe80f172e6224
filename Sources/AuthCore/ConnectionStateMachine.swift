/// The rules of one connection, as a pure state machine: the handler that
/// owns the channel reports what happened and does what it is told. Generic
/// over the line type so it needs no NIO, and driven by times the caller
/// passes, so tests need neither a channel nor a real clock.
///
/// - At most `maximumInFlight` requests run at once; further lines wait here,
///   and reading from the socket pauses while any wait, while the limit is
///   reached, or while the socket is not writable (a client that does not
///   read its answers).
/// - A connection with nothing in flight or waiting that has sent no whole
///   non-empty line, and received no answer, for `idleTimeout` is closed.
/// - After the peer half-closes, what was read is answered, then it closes
///   once those answers are written (a close drops what is still queued).
/// - An over-long line closes it after one error answer.
/// - A connection still closing `idleTimeout` after it began (a peer that
///   half-closed and never reads its answers) is closed regardless.
public struct ConnectionStateMachine<Line> {
    public let maximumInFlight: Int
    public let idleTimeout: Int64
    public private(set) var inFlight = 0
    public private(set) var isClosing = false
    private var waiting: [Line] = []
    private var waitingHead = 0
    private var readPaused = false
    private var inputClosed = false
    private var lastActivity: Int64
    private var closingSince: Int64 = 0

    public init(maximumInFlight: Int, idleTimeout: Int64, now: Int64) {
        self.maximumInFlight = maximumInFlight
        self.idleTimeout = idleTimeout
        self.lastActivity = now
    }

    public var waitingLines: Int { waiting.count - waitingHead }

    /// A whole non-empty line arrived: process it now, or nil (it waits).
    public mutating func lineArrived(_ line: Line, now: Int64) -> Line? {
        guard !isClosing else { return nil }
        lastActivity = now
        // Behind waiting lines too: answers may come in any order, but
        // requests start in the order they were sent.
        if inFlight >= maximumInFlight || waitingLines > 0 {
            waiting.append(line)
            return nil
        }
        return line
    }

    /// A line became a request (the handler decoded it and started it).
    public mutating func requestStarted() {
        inFlight += 1
    }

    /// A request was answered. Then take `nextWaitingLine()` until nil, and
    /// ask `shouldResumeReading` and `shouldCloseWhenDone`.
    public mutating func requestCompleted(now: Int64) {
        inFlight -= 1
        lastActivity = now
    }

    /// The next waiting line to process, while there is room for it.
    public mutating func nextWaitingLine() -> Line? {
        guard !isClosing, inFlight < maximumInFlight, waitingHead < waiting.count else { return nil }
        let line = waiting[waitingHead]
        waitingHead += 1
        if waitingHead == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingHead = 0
        }
        return line
    }

    private var mayRead: Bool { inFlight < maximumInFlight && waitingLines == 0 }

    /// The channel asks for more input: read now (true), or pause.
    public mutating func readRequested(writable: Bool) -> Bool {
        if mayRead && writable { return true }
        readPaused = true
        return false
    }

    /// After an answer or a writability change: resume a paused read?
    public mutating func shouldResumeReading(writable: Bool) -> Bool {
        guard readPaused, mayRead, writable, !isClosing else { return false }
        readPaused = false
        return true
    }

    /// The peer shut down its writing side.
    public mutating func inputDidClose() {
        inputClosed = true
    }

    /// Close (once the answers are written)? After a half-close, once
    /// everything read is answered.
    public mutating func shouldCloseWhenDone(now: Int64) -> Bool {
        guard inputClosed, inFlight == 0, waitingLines == 0, !isClosing else { return false }
        beginClosing(now: now)
        return true
    }

    /// The periodic check: close now? When idle, or when a close begun
    /// `idleTimeout` ago still waits for the peer to take its answers.
    public mutating func idleCheck(now: Int64) -> Bool {
        if isClosing { return now - closingSince >= idleTimeout }
        guard inFlight == 0, waitingLines == 0, now - lastActivity >= idleTimeout else { return false }
        beginClosing(now: now)
        return true
    }

    /// An over-long line, or a refused connection: answer once, then close.
    public mutating func closeAfterError(now: Int64) {
        beginClosing(now: now)
    }

    private mutating func beginClosing(now: Int64) {
        isClosing = true
        closingSince = now
    }
}
