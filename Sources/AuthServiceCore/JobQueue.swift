/// Where the service sends work that must not run on the caller's thread:
/// password hashing, and the store's blocking calls. Jobs carry the peer
/// that asked (the queue shares itself fairly between peers) and can be
/// dropped unrun when their requester has gone. The daemon's are
/// `WorkerPool` and, for a store whose calls do not block,
/// `StoreAdmission`; tests may run jobs inline.
public protocol JobQueue: AnyObject, Sendable {
    /// Enqueues `job`, or says at once why not (the caller answers `busy`).
    func submit(_ job: QueuedJob) -> Result<Void, JobRefusal>
    /// Jobs waiting (not yet running).
    var depth: Int { get }
    /// The most jobs that may wait.
    var capacity: Int { get }
    /// Seconds a new job would wait, rounded up, at least 1.
    var retryAfterEstimate: Int { get }
    /// Applies a new share per peer (on reload).
    func updatePerPeerCapacity(_ perPeer: Int)
    /// Lets queued jobs finish, then stops; waits at most `timeout` seconds.
    @discardableResult
    func drainAndStop(timeout: Double) -> Bool
    /// Whether a job keeps its place until its call is answered, not only
    /// until `run` returns: the service then calls `jobAnswered` once the
    /// call of every job that ran has been answered.
    var holdsPlaceUntilAnswered: Bool { get }
    /// The call of a job that ran has been answered: its place is free.
    func jobAnswered()
}

extension JobQueue {
    /// A job's place is its thread, free once `run` returns.
    public var holdsPlaceUntilAnswered: Bool { false }
    public func jobAnswered() {}
}

/// A job with who asked for it and how to tell it is no longer wanted.
public struct QueuedJob: Sendable {
    public typealias Work = @Sendable () -> Void

    public var peer: UInt32
    /// True once the requester has gone (checked before the job starts).
    public var isAbandoned: @Sendable () -> Bool
    public var run: Work
    /// Runs instead of `run` for a job dropped because it was abandoned.
    public var dropped: Work

    public init(
        peer: UInt32, isAbandoned: @escaping @Sendable () -> Bool = { false }, run: @escaping Work,
        dropped: @escaping Work = {}
    ) {
        self.peer = peer
        self.isAbandoned = isAbandoned
        self.run = run
        self.dropped = dropped
    }
}

/// Why a job queue refused a job.
public enum JobRefusal: Error, Sendable, Equatable {
    /// The whole queue is full.
    case full
    /// This peer's share of the queue is full.
    case peerFull
    /// The queue is stopping.
    case stopping
}
