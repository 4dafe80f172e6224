import CSystemd
import Dispatch
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// A bounded pool of long-lived workers on Dispatch queues. Jobs wait in a
/// FIFO of at most `capacity`; a full queue refuses at once (the caller
/// answers `busy`) instead of growing without bound. Workers can run at a
/// lower scheduling priority (`niceness`) than the socket threads, so
/// password hashing saturating the cores never starves token checks.
public final class WorkerPool: @unchecked Sendable {
    public typealias Job = @Sendable () -> Void

    public let name: String
    public let threads: Int
    public let capacity: Int
    private let niceness: Int32
    private let lock = NIOLock()
    private let available = DispatchSemaphore(value: 0)
    private var queue: [Job?] = []
    private var head = 0
    private var running = 0
    private var stopping = false
    private let idle = DispatchGroup()
    /// Exponentially weighted mean job time in seconds, for `retry_after`.
    private var meanJobSeconds = 0.0

    public init(name: String, threads: Int, capacity: Int, niceness: Int32) {
        self.name = name
        self.threads = threads
        self.capacity = capacity
        self.niceness = niceness
        for index in 0..<threads {
            let dispatchQueue = DispatchQueue(label: "authd.\(name).\(index)")
            idle.enter()
            dispatchQueue.async { self.workerLoop() }
        }
    }

    /// Jobs waiting (not yet running).
    public var depth: Int { lock.withLock { queue.count - head } }

    /// Enqueues `job`; false when the queue is full or the pool stopping.
    public func submit(_ job: @escaping Job) -> Bool {
        let accepted = lock.withLock { () -> Bool in
            if stopping || queue.count - head >= capacity { return false }
            queue.append(job)
            return true
        }
        if accepted { available.signal() }
        return accepted
    }

    /// Seconds a new job would wait, rounded up, at least 1.
    public var retryAfterEstimate: Int {
        lock.withLock {
            let waiting = Double(queue.count - head + running)
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
            let job: Job? = lock.withLock {
                if head < queue.count {
                    let job = queue[head]
                    queue[head] = nil
                    head += 1
                    if head > 1024 && head * 2 > queue.count {
                        queue.removeFirst(head)
                        head = 0
                    }
                    running += 1
                    return job
                }
                return nil
            }
            guard let job else {
                if lock.withLock({ stopping && head >= queue.count }) { break }
                continue
            }
            let start = DispatchTime.now().uptimeNanoseconds
            job()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            lock.withLock {
                running -= 1
                meanJobSeconds = meanJobSeconds == 0 ? seconds : meanJobSeconds * 0.9 + seconds * 0.1
            }
        }
        idle.leave()
    }
}
