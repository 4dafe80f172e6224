import AuthDaemon
import Foundation
import Synchronization
import Testing

/// The sweeper's timer: once stopped, nothing of it runs any more, so the
/// store can be closed right after (a sweep used to be able to fire then).
@Suite struct PeriodicTaskTests {
    final class Runs: Sendable {
        // Atomics, not `Mutex`: TSan does not see the futex behind
        // Synchronization's Mutex on Linux and reports its users as races.
        let count = Atomic(0)
        let running = Atomic(false)
    }

    @Test func stopWaitsForARunInProgressAndNoRunStartsAfterIt() {
        let runs = Runs()
        let task = PeriodicTask(name: "test", interval: .milliseconds(5)) {
            runs.running.store(true, ordering: .sequentiallyConsistent)
            usleep(30_000)
            runs.count.add(1, ordering: .sequentiallyConsistent)
            runs.running.store(false, ordering: .sequentiallyConsistent)
        }
        task.start()
        while runs.count.load(ordering: .sequentiallyConsistent) < 2 { usleep(1_000) }
        // Stop while a run may well be under way.
        while !runs.running.load(ordering: .sequentiallyConsistent) { usleep(500) }
        task.stop()
        #expect(runs.running.load(ordering: .sequentiallyConsistent) == false)
        let after = runs.count.load(ordering: .sequentiallyConsistent)
        usleep(100_000)
        #expect(runs.count.load(ordering: .sequentiallyConsistent) == after)
        task.stop()  // idempotent
    }

    @Test func aTaskStoppedBeforeItStartedNeverRuns() {
        let runs = Runs()
        let task = PeriodicTask(name: "never", interval: .milliseconds(1)) {
            runs.count.add(1, ordering: .sequentiallyConsistent)
        }
        task.stop()
        usleep(20_000)
        #expect(runs.count.load(ordering: .sequentiallyConsistent) == 0)
    }
}
