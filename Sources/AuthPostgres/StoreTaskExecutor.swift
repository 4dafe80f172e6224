import Foundation

/// Runs the store's tasks on threads of its own instead of Swift's
/// cooperative pool or Dispatch's global one. Callers may block a thread
/// while they wait for a store call (a semaphore, a bcrypt job): the
/// cooperative pool has one thread per core, and Dispatch's pool is shared
/// and bounded, so with enough callers blocked either could starve the very
/// task that answers them (seen: the test suite's callers exhausting
/// Dispatch's threads, and store calls never running).
final class StoreTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var head = 0

    /// One for every store in the process (the daemon has one store, the
    /// tests a few dozen): store tasks never block, so a few threads do.
    static let shared = StoreTaskExecutor(label: "authd.postgres", threads: 4)

    init(label: String, threads: Int) {
        for index in 0..<threads {
            let thread = Thread { [self] in work() }
            thread.name = "\(label).\(index)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// The threads live as long as the process.
    private func work() {
        while true {
            condition.lock()
            while head == jobs.count { condition.wait() }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            }
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
