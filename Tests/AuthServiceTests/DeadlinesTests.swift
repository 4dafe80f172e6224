#if canImport(AuthPostgres)
    import Foundation
    import Testing

    @testable import AuthPostgres

    /// The store's time limits: an action runs once its limit has passed,
    /// and never when its call ended first.
    @Suite(.timeLimit(.minutes(1)))
    struct DeadlinesTests {
        @Test func anActionRunsOnceItsLimitHasPassedAndNotBefore() {
            let deadlines = Deadlines(resolution: .milliseconds(5))
            let fired = DispatchSemaphore(value: 0)
            let registered = ContinuousClock.now
            let firedAt = Guarded<ContinuousClock.Instant?>(nil)
            _ = deadlines.add(after: .milliseconds(100)) {
                firedAt.withLock { $0 = .now }
                fired.signal()
            }
            #expect(fired.wait(timeout: .now() + 5) == .success)
            let elapsed = firedAt.withLock { $0 }.map { $0 - registered }
            #expect(elapsed.map { $0 >= .milliseconds(100) } == true)
        }

        @Test func aRemovedActionNeverRunsAndTheOthersStillDo() {
            let deadlines = Deadlines(resolution: .milliseconds(5))
            let ran = Guarded<[Int]>([])
            let last = DispatchSemaphore(value: 0)
            let removed = deadlines.add(after: .milliseconds(20)) { ran.withLock { $0.append(1) } }
            _ = deadlines.add(after: .milliseconds(30)) { ran.withLock { $0.append(2) } }
            _ = deadlines.add(after: .milliseconds(150)) {
                ran.withLock { $0.append(3) }
                last.signal()
            }
            deadlines.remove(removed)
            #expect(last.wait(timeout: .now() + 5) == .success)
            #expect(ran.withLock { $0 } == [2, 3])
        }
    }
#endif
