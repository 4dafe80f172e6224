#if canImport(AuthPostgres)
    import Foundation
    import Testing

    @testable import AuthPostgres

    /// The store's time limits: an action runs once its limit has passed,
    /// and never when its call ended first.
    ///
    /// No suite time limit: one counts from when the test is scheduled, and
    /// under the thread sanitizer on two cores the other suites can keep the
    /// test pool busy for longer than the whole test takes. Every wait here
    /// is bounded instead, and none of them holds a thread of that pool.
    @Suite struct DeadlinesTests {
        @Test func anActionRunsOnceItsLimitHasPassedAndNotBefore() async {
            let deadlines = Deadlines(resolution: .milliseconds(5))
            let fired = DispatchSemaphore(value: 0)
            let registered = ContinuousClock.now
            let firedAt = Guarded<ContinuousClock.Instant?>(nil)
            _ = deadlines.add(after: .milliseconds(100)) {
                firedAt.withLock { $0 = .now }
                fired.signal()
            }
            #expect(await fired.signalled(within: .seconds(5)))
            let elapsed = firedAt.withLock { $0 }.map { $0 - registered }
            #expect(elapsed.map { $0 >= .milliseconds(100) } == true)
        }

        @Test func aRemovedActionNeverRunsAndTheOthersStillDo() async {
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
            #expect(await last.signalled(within: .seconds(5)))
            #expect(ran.withLock { $0 } == [2, 3])
        }
    }

    extension DispatchSemaphore {
        /// Waits on a Dispatch thread, so the awaiting test's thread is free
        /// for the others meanwhile.
        fileprivate func signalled(within limit: DispatchTimeInterval) async -> Bool {
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(returning: self.wait(timeout: .now() + limit) == .success)
                }
            }
        }
    }
#endif
