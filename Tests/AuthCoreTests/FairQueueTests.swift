import AuthCore
import Testing

@Suite struct FairQueueTests {
    @Test func peersAreServedInTurn() throws {
        var queue = FairQueue<String>(capacity: 100, perPeerCapacity: 50)
        for index in 0..<5 { try queue.enqueue("flood\(index)", peer: 65534) }
        try queue.enqueue("root", peer: 0)
        // The flood queued first, yet root's job is the second one served.
        #expect(queue.dequeue() == "flood0")
        #expect(queue.dequeue() == "root")
        var rest: [String] = []
        while let next = queue.dequeue() { rest.append(next) }
        #expect(rest == ["flood1", "flood2", "flood3", "flood4"])
        #expect(queue.count == 0)
    }

    @Test func eachPeerKeepsItsOwnOrder() throws {
        var queue = FairQueue<Int>(capacity: 100, perPeerCapacity: 50)
        for index in 0..<3 {
            try queue.enqueue(index, peer: 1)
            try queue.enqueue(100 + index, peer: 2)
            try queue.enqueue(200 + index, peer: 3)
        }
        var served: [Int] = []
        while let next = queue.dequeue() { served.append(next) }
        #expect(served == [0, 100, 200, 1, 101, 201, 2, 102, 202])
    }

    @Test func aPeerOverItsShareIsRefusedAloneAndTheWholeIsBounded() throws {
        var queue = FairQueue<Int>(capacity: 6, perPeerCapacity: 4)
        for index in 0..<4 { try queue.enqueue(index, peer: 9) }
        #expect(throws: FairQueue<Int>.Refusal.peerFull) { try queue.enqueue(4, peer: 9) }
        try queue.enqueue(10, peer: 8)
        try queue.enqueue(11, peer: 7)
        #expect(throws: FairQueue<Int>.Refusal.full) { try queue.enqueue(12, peer: 6) }
        #expect(queue.count(peer: 9) == 4)
        // Once served, the share is free again.
        _ = queue.dequeue()
        #expect(queue.count(peer: 9) == 3)
        try queue.enqueue(5, peer: 9)
    }

    @Test func manyJobsStayCheapToQueueAndServe() throws {
        var queue = FairQueue<Int>(capacity: 200_000, perPeerCapacity: 200_000)
        for index in 0..<100_000 { try queue.enqueue(index, peer: UInt32(index % 3)) }
        var count = 0
        while queue.dequeue() != nil { count += 1 }
        #expect(count == 100_000)
    }
}

@Suite struct ConnectionAdmissionTests {
    let limits = ConnectionAdmission.Limits(maximum: 10, perPeer: 4, adminReserved: 3)

    @Test func onePeerGetsItsShareAndNoMore() {
        var admission = ConnectionAdmission(limits: limits)
        for _ in 0..<4 { #expect(admission.admit(uid: 65534, isAdmin: false) == true) }
        #expect(admission.admit(uid: 65534, isAdmin: false) == false)
        #expect(admission.admit(uid: 1001, isAdmin: false) == true)
        admission.release(uid: 65534)
        #expect(admission.admit(uid: 65534, isAdmin: false) == true)
    }

    @Test func theReservedPlacesAreForAdminsOnly() {
        var admission = ConnectionAdmission(limits: limits)
        for uid in UInt32(1)...7 { #expect(admission.admit(uid: uid, isAdmin: false) == true) }
        #expect(admission.admit(uid: 8, isAdmin: false) == false)
        for _ in 0..<3 { #expect(admission.admit(uid: 0, isAdmin: true) == true) }
        #expect(admission.admit(uid: 0, isAdmin: true) == false)
        #expect(admission.total == 10)
    }

    @Test func releasingAnUnknownPeerChangesNothing() {
        var admission = ConnectionAdmission(limits: limits)
        #expect(admission.admit(uid: 5, isAdmin: false) == true)
        admission.release(uid: 6)
        #expect(admission.total == 1)
        #expect(admission.connections(uid: 5) == 1)
    }
}

@Suite struct LockReportTests {
    @Test func aLockIsReportedOncePerKeyAndWindow() {
        var throttle = LoginThrottle(limits: .init(accountMaxFailures: 2, clientMaxFailures: 100, window: 60))
        let account = LoginThrottle.accountKey("a@x.com")
        let client = LoginThrottle.clientKey(peerUID: 7, reported: nil)
        for _ in 0..<2 {
            #expect(throttle.begin(account: account, client: client, now: 0) == .proceed)
            _ = throttle.finish(account: account, client: client, outcome: .failed, now: 0)
        }
        #expect(throttle.begin(account: account, client: client, now: 1) == .limited(retryAfter: 59))
        #expect(throttle.isFirstRefusal(account: account, client: client, now: 1) == true)
        #expect(throttle.isFirstRefusal(account: account, client: client, now: 2) == false)
        // A new window, a new lock: reported again.
        for _ in 0..<2 {
            #expect(throttle.begin(account: account, client: client, now: 61) == .proceed)
            _ = throttle.finish(account: account, client: client, outcome: .failed, now: 61)
        }
        #expect(throttle.isFirstRefusal(account: account, client: client, now: 62) == true)
    }
}
