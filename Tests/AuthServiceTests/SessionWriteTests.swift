import AuthCore
import AuthServiceCore
import Foundation
import Testing

/// A login's session is written while its hashing worker goes on to the
/// next hash; the worker waits only when as many sessions as there are
/// workers are still being written, so a database slow to answer holds
/// logins back as it did when each worker waited for its own.
@Suite struct SessionWriteTests {
    @Test func aWorkerGoesOnWhileItsSessionIsWrittenAtMostOneWritePerWorker() throws {
        let harness = try ServiceHarness(.memory) { $0.workers = 2 }
        let store = try #require(harness.store as? InMemoryCredentialStore)
        for index in 0..<3 { _ = try harness.createUser("writer\(index)@example.com") }
        store.holdSessionAnswers()
        let answers = Guarded<[Int: Result<JSONValue, AuthError>]>([:])
        let returned = Guarded<Set<Int>>([])
        // The harness's queues are inline: each login hashes on the thread
        // that handed it in, which stands for its worker.
        func login(_ index: Int) {
            Thread.detachNewThread {
                let request = RPCRequest(
                    id: .int(Int64(index)), method: "auth.login",
                    params: [
                        "email": .string("writer\(index)@example.com"), "password": .string(ServiceHarness.password),
                        "client": .string("client\(index)"),
                    ])
                harness.service.handle(request, peer: ServiceHarness.root) { result in
                    answers.withLock { $0[index] = result }
                }
                returned.withLock { _ = $0.insert(index) }
            }
        }
        login(0)
        login(1)
        // Both workers are free again, their sessions written, unanswered.
        #expect(eventually { returned.withLock { $0 } == [0, 1] })
        #expect(store.heldSessionAnswerCount == 2)
        #expect(answers.withLock { $0.isEmpty })
        // A third login's worker waits for a place: no third write.
        login(2)
        Thread.sleep(forTimeInterval: 0.3)
        #expect(returned.withLock { $0 } == [0, 1])
        #expect(store.heldSessionAnswerCount == 2)
        store.releaseSessionAnswers()
        #expect(eventually { answers.withLock { $0.count } == 3 && returned.withLock { $0.count } == 3 })
        for index in 0..<3 {
            let answer = try #require(answers.withLock { $0[index] })
            #expect(answer.object?["access_token"] != nil, "login \(index): \(answer)")
        }
        #expect(harness.store.view.counts.sessions == 3)
    }

    /// A session write that fails, or finds the credentials changed, gives
    /// its place back: with one worker, the next login still opens.
    @Test func aFailedOrRefusedSessionWriteGivesItsPlaceBack() throws {
        let harness = try ServiceHarness(.memory) { $0.workers = 1 }
        let store = try #require(harness.store as? InMemoryCredentialStore)
        let id = try harness.createUser("alice@example.com")
        store.failWrites("the disk is gone")
        let failed = harness.call(
            "auth.login", ["email": .string("alice@example.com"), "password": .string(ServiceHarness.password)])
        #expect(failed.reason == "internal_error")
        store.failWrites(nil)
        store.beforeNext("createSession") {
            _ = harness.call("user.update", ["id": .number("\(id)"), "active": .bool(false)])
        }
        let refused = harness.call(
            "auth.login", ["email": .string("alice@example.com"), "password": .string(ServiceHarness.password)])
        #expect(refused.reason == "invalid_credentials")
        _ = try harness.result("user.update", ["id": .number("\(id)"), "active": .bool(true)])
        // A leaked place would hold this one's worker for good (no answer).
        #expect(try harness.login("alice@example.com").access.isEmpty == false)
    }
}
