import Dispatch

/// A job that runs every `interval` on its own serial queue (the sweeper,
/// the event summaries), with a stop that means it: once `stop()` returns,
/// a run in progress has finished and no other will start, so shutdown can
/// close what the job uses (the store) right after.
public final class PeriodicTask: @unchecked Sendable {
    private let queue: DispatchQueue
    private let timer: DispatchSourceTimer
    private var started = false
    private var stopped = false

    public init(name: String, interval: DispatchTimeInterval, _ job: @escaping @Sendable () -> Void) {
        queue = DispatchQueue(label: "authd.\(name)")
        timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler(handler: job)
    }

    public func start() {
        guard !started else { return }
        started = true
        timer.resume()
    }

    /// Cancels the timer and waits for a run in progress. Idempotent.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        timer.cancel()
        // A suspended source must still be resumed once to be released;
        // cancelled first, its handler never runs.
        if !started { timer.resume() }
        // Runs of the job happen on `queue`: this returns after the last one.
        queue.sync {}
    }

    deinit { stop() }
}
