import Dispatch
import NIOCore
import NIOPosix
import PostgresNIO

/// Runs the store's tasks on the event loops of postgres-nio's connections
/// (`PostgresConnection.defaultEventLoopGroup`). A job enqueued on one of
/// those loops, or on any other NIO loop (the socket server's, where a
/// call starts), runs on that loop; from any other thread it goes to the
/// next loop of the group. So a task that awaits a statement goes on where
/// the answer arrives, with no thread hand-off, and a call that starts on
/// the socket server's loop starts there.
///
/// The store's tasks had four threads of their own before: under a refresh
/// load those threads, their one queue lock and the hand-offs to and from
/// the connections' loops took most of the daemon's time (`perf`: context
/// switches 40 %, the queue lock contended on every resumption).
///
/// Nothing on a loop may block: a store task never waits on a lock held
/// across a database call, nor on a semaphore (`PostgresStore.blocking`
/// refuses to run on a loop), and the few things that may take long, such
/// as adopting a whole reloaded view or another host's signing keys, go to
/// a Dispatch thread first (`offLoop`).
final class StoreTaskExecutor: TaskExecutor, @unchecked Sendable {
    /// The one every store in the process uses.
    static let shared = StoreTaskExecutor(group: PostgresConnection.defaultEventLoopGroup)

    private let group: any EventLoopGroup

    init(group: any EventLoopGroup) {
        self.group = group
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? group.any()
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Whether the calling thread is an event loop's, where nothing may block.
    static var onEventLoop: Bool { MultiThreadedEventLoopGroup.currentEventLoop != nil }

    /// Runs `body`, which may block or take long, on a Dispatch thread, and
    /// awaits its result with the loop free meanwhile.
    static func offLoop<Value: Sendable>(_ body: @escaping @Sendable () -> Value) async -> Value {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: body()) }
        }
    }
}
