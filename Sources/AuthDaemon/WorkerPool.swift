import AuthCore
import AuthServiceCore
import CSystemd
import Dispatch
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// A bounded pool of long-lived workers on Dispatch queues. Jobs wait in a
/// `FairQueue`: one FIFO per peer uid, served in turn, at most `capacity` in
/// all and `perPeerCapacity` per peer; a full queue (or a peer over its
/// share) refuses at once (the caller answers `busy`) instead of growing
/// without bound. A job whose requester has gone away (its connection
/// closed) is dropped before it starts. Workers can run at a lower
/// scheduling priority (`niceness`) than the socket threads, so password
/// hashing saturating the cores never starves token checks.
public final class WorkerPool: JobQueue, @unchecked Sendable {
    public typealias Job = @Sendable () -> Void

    public typealias Request = QueuedJob
    public typealias Refusal = JobRefusal

    public let name: String
    public let threads: Int
    public let capacity: Int
    private let niceness: Int32
    private let lock = NIOLock()
    private let available = DispatchSemaphore(value: 0)
    private var queue: FairQueue<Request>
    private var running = 0
    private var stopping = false
    private var droppedCount = 0
    private let idle = DispatchGroup()
    /// Exponentially weighted mean job time in seconds, for `retry_after`.
    private var meanJobSeconds = 0.0

    public init(name: String, threads: Int, capacity: Int, perPeerCapacity: Int? = nil, niceness: Int32) {
        self.name = name
        self.threads = threads
        self.capacity = capacity
        self.niceness = niceness
        self.queue = FairQueue(capacity: capacity, perPeerCapacity: perPeerCapacity ?? capacity)
        for index in 0..<threads {
            let dispatchQueue = DispatchQueue(label: "authd.\(name).\(index)")
            idle.enter()
            dispatchQueue.async { self.workerLoop() }
        }
    }

    /// Jobs waiting (not yet running).
    public var depth: Int { lock.withLock { queue.count } }

    /// Jobs dropped because their requester had gone before they started.
    public var dropped: Int { lock.withLock { droppedCount } }

    public func updatePerPeerCapacity(_ perPeer: Int) { lock.withLock { queue.perPeerCapacity = perPeer } }

    /// Enqueues `request`, or says why not.
    public func submit(_ request: Request) -> Result<Void, Refusal> {
        let result = lock.withLock { () -> Result<Void, Refusal> in
            if stopping { return .failure(.stopping) }
            do throws(FairQueue<Request>.Refusal) {
                try queue.enqueue(request, peer: request.peer)
                return .success(())
            } catch {
                return .failure(error == .full ? .full : .peerFull)
            }
        }
        if case .success = result { available.signal() }
        return result
    }

    /// Enqueues a job of no particular peer; false when the queue is full.
    public func submit(_ job: @escaping Job) -> Bool {
        if case .success = submit(Request(peer: UInt32.max, run: job)) { return true }
        return false
    }

    /// Seconds a new job would wait, rounded up, at least 1.
    public var retryAfterEstimate: Int {
        lock.withLock {
            let waiting = Double(queue.count + running)
            let seconds = waiting * max(meanJobSeconds, 0.01) / Double(threads)
            return max(1, Int(seconds.rounded(.up)))
        }
    }

    /// Lets queued jobs finish, then stops the workers; waits at most
    /// `timeout` seconds. Returns whether every job finished.
    @discardableResult
    public func drainAndStop(timeout: Double) -> Bool {
        lock.withLock { stopping = true }
        for _ in 0..<threads { available.signal() }
        return idle.wait(timeout: .now() + timeout) == .success
    }

    private func workerLoop() {
        if niceness != 0 {
            // Linux applies nice values per thread (to the tid).
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(authd_gettid()), niceness)
        }
        while true {
            available.wait()
            let request: Request? = lock.withLock {
                guard let request = queue.dequeue() else { return nil }
                running += 1
                return request
            }
            guard let request else {
                if lock.withLock({ stopping && queue.count == 0 }) { break }
                continue
            }
            if request.isAbandoned() {
                request.dropped()
                lock.withLock {
                    running -= 1
                    droppedCount += 1
                }
                continue
            }
            let start = DispatchTime.now().uptimeNanoseconds
            request.run()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            lock.withLock {
                running -= 1
                meanJobSeconds = meanJobSeconds == 0 ? seconds : meanJobSeconds * 0.9 + seconds * 0.1
            }
        }
        idle.leave()
    }
}
