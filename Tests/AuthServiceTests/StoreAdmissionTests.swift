import AuthServiceCore
import Dispatch
import Testing

/// The store queue of a store whose calls do not block: a bound on calls in
/// flight, held until each is answered, shared in turn between peers.
@Suite struct StoreAdmissionTests {
    /// Jobs that record that they started and are answered when the test says.
    final class Calls: @unchecked Sendable {
        let admission: StoreAdmission
        private let started = Guarded<[String]>([])

        init(limit: Int, capacity: Int = 100, perPeer: Int = 100) {
            admission = StoreAdmission(limit: limit, capacity: capacity, perPeerCapacity: perPeer)
        }

        var startedNames: [String] { started.withLock { $0 } }

        /// Why the job was refused, or nil.
        @discardableResult
        func submit(_ name: String, peer: UInt32, gone: Bool = false, dropped: @escaping @Sendable () -> Void = {})
            -> JobRefusal?
        {
            let result = admission.submit(
                QueuedJob(
                    peer: peer, isAbandoned: { gone }, run: { [started] in started.withLock { $0.append(name) } },
                    dropped: dropped))
            if case .failure(let refusal) = result { return refusal }
            return nil
        }

        /// One call is answered.
        func answer() { admission.jobAnswered() }
    }

    @Test func atMostTheLimitAreInFlightAndAnAnswerStartsTheNext() {
        let calls = Calls(limit: 2)
        for index in 0..<5 { calls.submit("a\(index)", peer: 1) }
        #expect(calls.startedNames == ["a0", "a1"])
        #expect(calls.admission.inFlight == 2)
        #expect(calls.admission.depth == 3)
        calls.answer()
        #expect(calls.startedNames == ["a0", "a1", "a2"])
        for _ in 0..<4 { calls.answer() }
        #expect(calls.startedNames.count == 5)
        #expect(calls.admission.inFlight == 0)
        #expect(calls.admission.depth == 0)
    }

    /// One peer's hundred queued calls delay another's by one call at most.
    @Test func anotherPeersCallIsNextNotBehindAFlood() {
        let calls = Calls(limit: 1)
        for index in 0..<100 { calls.submit("flood\(index)", peer: 1) }
        calls.submit("other", peer: 2)
        calls.answer()
        calls.answer()
        #expect(calls.startedNames == ["flood0", "flood1", "other"])
    }

    @Test func pastItsShareOnlyThatPeerIsRefused() {
        let calls = Calls(limit: 1, capacity: 6, perPeer: 3)
        calls.submit("running", peer: 1)
        for index in 0..<3 { #expect(calls.submit("a\(index)", peer: 1) == nil) }
        #expect(calls.submit("a3", peer: 1) == .peerFull)
        for index in 0..<3 { #expect(calls.submit("b\(index)", peer: 2) == nil) }
        #expect(calls.submit("c", peer: 3) == .full)
    }

    /// A requester gone before its turn costs no call; its place goes on.
    @Test func aCallWhoseRequesterHasGoneIsDroppedAndTheNextStarts() {
        let calls = Calls(limit: 1)
        let dropped = Guarded(0)
        calls.submit("first", peer: 1)
        calls.submit("gone", peer: 1, gone: true, dropped: { dropped.withLock { $0 += 1 } })
        calls.submit("last", peer: 1)
        calls.answer()
        #expect(calls.startedNames == ["first", "last"])
        #expect(dropped.withLock { $0 } == 1)
        #expect(calls.admission.dropped == 1)
        #expect(calls.admission.inFlight == 1)
    }

    /// Calls answered while they start (an error found at once) start the
    /// next in a loop, not a recursion ten thousand deep.
    @Test func callsAnsweredAsTheyStartDoNotRecurse() {
        let admission = StoreAdmission(limit: 1, capacity: 20_000, perPeerCapacity: 20_000)
        let ran = Guarded(0)
        let blocker = QueuedJob(peer: 9, run: {})
        _ = admission.submit(blocker)
        for _ in 0..<10_000 {
            _ = admission.submit(
                QueuedJob(
                    peer: 1,
                    run: {
                        ran.withLock { $0 += 1 }
                        admission.jobAnswered()
                    }))
        }
        admission.jobAnswered()
        #expect(ran.withLock { $0 } == 10_000)
        #expect(admission.inFlight == 0)
    }

    /// Submits and answers from many threads at once: every call starts
    /// once, and none is left queued with a place free.
    @Test func concurrentSubmitsAndAnswersLoseNothing() async {
        let admission = StoreAdmission(limit: 3, capacity: 10_000, perPeerCapacity: 10_000)
        let started = Guarded(0)
        let total = 2_000
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for _ in 0..<(total / 8) {
                        _ = admission.submit(
                            QueuedJob(
                                peer: UInt32(worker),
                                run: {
                                    started.withLock { $0 += 1 }
                                    // Answered later, on another thread.
                                    DispatchQueue.global().async { admission.jobAnswered() }
                                }))
                    }
                }
            }
        }
        #expect(admission.drainAndStop(timeout: 30))
        #expect(started.withLock { $0 } == total)
        #expect(admission.inFlight == 0)
        #expect(admission.depth == 0)
    }

    @Test func afterStopNothingIsTakenAndQueuedCallsStillRun() {
        let calls = Calls(limit: 1)
        calls.submit("running", peer: 1)
        calls.submit("queued", peer: 1)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) {
            calls.answer()
            calls.answer()
        }
        #expect(calls.admission.drainAndStop(timeout: 10))
        #expect(calls.startedNames == ["running", "queued"])
        #expect(calls.submit("late", peer: 1) == .stopping)
    }
}
