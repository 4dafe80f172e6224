import AuthCore
import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

/// The store queue of a store whose calls do not block (PostgreSQL): a job
/// only starts its store calls, which complete later on the store's own
/// threads, so no worker thread is needed to run it. What is needed is the
/// bound and the fairness a `WorkerPool` gives a blocking store: without
/// them one peer pipelining thousands of logouts would put all of them in
/// front of the database's connection pool, every other peer's calls
/// queued behind them until they timed out.
///
/// So a job holds its place from its start until its call is answered
/// (`jobAnswered`), at most `limit` are in flight, and the rest wait in a
/// `FairQueue`: in turn by peer, each peer refused past its share. A job
/// starts on the thread that made its place free: the one that submitted
/// it when a place was free, or the one that answered an earlier call.
/// Only one thread at a time starts jobs, in a loop, so a call answered
/// while its job is still starting never recurses into the next job.
public final class StoreAdmission: JobQueue, @unchecked Sendable {
    /// Calls in flight at once (the daemon: four per database connection,
    /// since a write also waits for the change feed after its statement).
    public let limit: Int
    public let capacity: Int

    private struct State {
        var queue: FairQueue<QueuedJob>
        var inFlight = 0
        /// A thread is in `drain`, starting jobs.
        var draining = false
        var stopping = false
        var droppedCount = 0
    }

    private let state: Locked<State>

    public init(limit: Int, capacity: Int, perPeerCapacity: Int) {
        precondition(limit > 0, "a store admission needs at least one place")
        self.limit = limit
        self.capacity = capacity
        state = Locked(State(queue: FairQueue(capacity: capacity, perPeerCapacity: perPeerCapacity)))
    }

    public var holdsPlaceUntilAnswered: Bool { true }

    /// Jobs waiting for a place.
    public var depth: Int { state.withLock { $0.queue.count } }

    /// Calls started and not yet answered.
    public var inFlight: Int { state.withLock { $0.inFlight } }

    /// Jobs dropped because their requester had gone before they started.
    public var dropped: Int { state.withLock { $0.droppedCount } }

    /// A queue of calls that do not block drains at the database's pace
    /// (thousands a second), so a full one is a second's wait at most
    /// unless the database is slower than 1,000 calls a second.
    public var retryAfterEstimate: Int {
        let waiting = state.withLock { $0.queue.count }
        return max(1, (waiting + 999) / 1000)
    }

    public func updatePerPeerCapacity(_ perPeer: Int) { state.withLock { $0.queue.perPeerCapacity = perPeer } }

    public func submit(_ job: QueuedJob) -> Result<Void, JobRefusal> {
        let refusal = state.withLock { state -> JobRefusal? in
            if state.stopping { return .stopping }
            do throws(FairQueue<QueuedJob>.Refusal) {
                try state.queue.enqueue(job, peer: job.peer)
                return nil
            } catch {
                return error == .full ? .full : .peerFull
            }
        }
        if let refusal { return .failure(refusal) }
        drain()
        return .success(())
    }

    public func jobAnswered() {
        state.withLock { state in
            precondition(state.inFlight > 0, "a store call answered twice, or one that never started")
            state.inFlight -= 1
        }
        drain()
    }

    /// Stops taking jobs; queued ones still start as places free. Waits at
    /// most `timeout` seconds for every call to be answered.
    @discardableResult
    public func drainAndStop(timeout: Double) -> Bool {
        state.withLock { $0.stopping = true }
        let deadline = DispatchTime.now() + timeout
        while state.withLock({ $0.inFlight > 0 || $0.queue.count > 0 }) {
            if DispatchTime.now() >= deadline { return false }
            usleep(5_000)
        }
        return true
    }

    /// Starts queued jobs while places are free, unless another thread is
    /// already doing so (it then starts these too, before it stops).
    private func drain() {
        var next = state.withLock { Self.claim(&$0, limit: limit, afterRun: false) }
        while let job = next {
            if job.isAbandoned() {
                job.dropped()
                state.withLock { state in
                    state.inFlight -= 1
                    state.droppedCount += 1
                }
            } else {
                job.run()
            }
            next = state.withLock { Self.claim(&$0, limit: limit, afterRun: true) }
        }
    }

    /// The next job to start, its place taken, or nil. The thread that gets
    /// one is the one draining until a claim finds nothing to start; the
    /// draining flag is cleared under the same lock as that last look, so
    /// a job queued or a place freed meanwhile is never left unstarted.
    private static func claim(_ state: inout State, limit: Int, afterRun: Bool) -> QueuedJob? {
        if afterRun { state.draining = false }
        guard !state.draining, state.inFlight < limit, let job = state.queue.dequeue() else { return nil }
        state.inFlight += 1
        state.draining = true
        return job
    }
}
