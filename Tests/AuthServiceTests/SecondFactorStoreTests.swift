import AuthCore
import AuthServiceCore
import Foundation
import Testing

/// The second factor's part of the store contract, on every store: each
/// compare-and-swap lets exactly one of several racing callers through.
@Suite struct SecondFactorStoreTests {
    typealias Conformance = StoreConformanceTests
    static let t0 = Conformance.t0

    func user(_ store: any CredentialStore, _ email: String) throws -> UserRecord {
        try Conformance.value {
            store.createUser(email: email, passwordHash: "h", role: "user", active: true, now: Self.t0, $0)
        }
    }

    func stored(_ store: any CredentialStore, _ id: Int64) throws -> UserRecord? {
        try Conformance.value { store.user(id: id, $0) }
    }

    @Test(arguments: StoreKind.allCases) func aFactorIsConfirmedOnceAndEachStepIsAcceptedOnce(_ kind: StoreKind) throws
    {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        #expect(try Conformance.value { store.secondFactor(userID: alice.id, $0) } == nil)
        #expect(
            try Conformance.value { store.beginSecondFactor(userID: alice.id, sealedSecret: [1], now: Self.t0, $0) })
        // Enrolling again before confirming replaces the secret.
        #expect(
            try Conformance.value { store.beginSecondFactor(userID: alice.id, sealedSecret: [2], now: Self.t0, $0) })
        #expect(
            try Conformance.value { store.secondFactor(userID: alice.id, $0) }
                == SecondFactorRecord(sealedSecret: [2], confirmed: false, lastStep: nil))
        #expect(try stored(store, alice.id)?.mfaEnabled == false)
        // Only the secret still stored can be confirmed.
        #expect(
            !(try Conformance.value {
                store.confirmSecondFactor(
                    userID: alice.id, sealedSecret: [1], step: 100, recoveryCodeHashes: [[9]], now: Self.t0, $0)
            }))
        #expect(
            try Conformance.value {
                store.confirmSecondFactor(
                    userID: alice.id, sealedSecret: [2], step: 100, recoveryCodeHashes: [[9], [8]], now: Self.t0, $0)
            })
        #expect(try stored(store, alice.id)?.mfaEnabled == true)
        // A login whose password was checked before the factor existed
        // cannot open its session now.
        #expect(try stored(store, alice.id)?.credentialGeneration == alice.credentialGeneration + 1)
        #expect(
            try Conformance.value { store.secondFactor(userID: alice.id, $0) }
                == SecondFactorRecord(sealedSecret: [2], confirmed: true, lastStep: 100))
        // A confirmed factor is not replaced by a new enrolment.
        #expect(
            !(try Conformance.value { store.beginSecondFactor(userID: alice.id, sealedSecret: [3], now: Self.t0, $0) }))
        // Steps only move forward.
        for step: Int64 in [99, 100] {
            #expect(
                !(try Conformance.value {
                    store.acceptSecondFactorStep(userID: alice.id, sealedSecret: [2], step: step, $0)
                }))
        }
        #expect(
            try Conformance.value { store.acceptSecondFactorStep(userID: alice.id, sealedSecret: [2], step: 101, $0) })
        #expect(
            !(try Conformance.value { store.acceptSecondFactorStep(userID: alice.id, sealedSecret: [2], step: 101, $0) })
        )
        // Only for the secret the code was checked against.
        #expect(
            !(try Conformance.value { store.acceptSecondFactorStep(userID: alice.id, sealedSecret: [9], step: 102, $0) })
        )
        let missing = Conformance.wait { store.beginSecondFactor(userID: 999_999, sealedSecret: [1], now: Self.t0, $0) }
        #expect(missing == .failure(.notFound))
    }

    @Test(arguments: StoreKind.allCases) func recoveryCodesAreSpentOnceAndReplaced(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        let bob = try user(store, "bob@example.com")
        // No codes without a confirmed factor.
        #expect(!(try Conformance.value { store.replaceRecoveryCodes(userID: alice.id, hashes: [[1]], $0) }))
        _ = try Conformance.value { store.beginSecondFactor(userID: alice.id, sealedSecret: [1], now: Self.t0, $0) }
        _ = try Conformance.value {
            store.confirmSecondFactor(
                userID: alice.id, sealedSecret: [1], step: 1, recoveryCodeHashes: [[7], [8]], now: Self.t0, $0)
        }
        #expect(!(try Conformance.value { store.spendRecoveryCode(userID: bob.id, hash: [7], $0) }))
        #expect(try Conformance.value { store.spendRecoveryCode(userID: alice.id, hash: [7], $0) })
        #expect(!(try Conformance.value { store.spendRecoveryCode(userID: alice.id, hash: [7], $0) }))
        #expect(try Conformance.value { store.replaceRecoveryCodes(userID: alice.id, hashes: [[5]], $0) })
        #expect(!(try Conformance.value { store.spendRecoveryCode(userID: alice.id, hash: [8], $0) }))
        #expect(try Conformance.value { store.spendRecoveryCode(userID: alice.id, hash: [5], $0) })
    }

    @Test(arguments: StoreKind.allCases) func removingTheFactorRemovesItsCodesAndChallenges(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        #expect(!(try Conformance.value { store.removeSecondFactor(userID: alice.id, now: Self.t0, $0) }))
        _ = try Conformance.value { store.beginSecondFactor(userID: alice.id, sealedSecret: [1], now: Self.t0, $0) }
        _ = try Conformance.value {
            store.confirmSecondFactor(
                userID: alice.id, sealedSecret: [1], step: 1, recoveryCodeHashes: [[7]], now: Self.t0, $0)
        }
        let challenge = MFAChallenge(userID: alice.id, credentialGeneration: 0, expiresAt: Self.t0 + 300)
        try Conformance.value { store.createMFAChallenge(tokenHash: [4], challenge, $0) }
        #expect(try Conformance.value { store.removeSecondFactor(userID: alice.id, now: Self.t0, $0) })
        #expect(try stored(store, alice.id)?.mfaEnabled == false)
        #expect(try Conformance.value { store.secondFactor(userID: alice.id, $0) } == nil)
        #expect(!(try Conformance.value { store.spendRecoveryCode(userID: alice.id, hash: [7], $0) }))
        #expect(try Conformance.value { store.mfaChallenge(tokenHash: [4], now: Self.t0, $0) } == nil)
        // Enrolling starts over.
        #expect(
            try Conformance.value { store.beginSecondFactor(userID: alice.id, sealedSecret: [2], now: Self.t0, $0) })
    }

    @Test(arguments: StoreKind.allCases) func aChallengeIsFoundUntilItExpiresAndSpentOnce(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        let challenge = MFAChallenge(userID: alice.id, credentialGeneration: 3, expiresAt: Self.t0 + 300)
        try Conformance.value { store.createMFAChallenge(tokenHash: [1], challenge, $0) }
        #expect(try Conformance.value { store.mfaChallenge(tokenHash: [1], now: Self.t0, $0) } == challenge)
        #expect(try Conformance.value { store.mfaChallenge(tokenHash: [2], now: Self.t0, $0) } == nil)
        #expect(try Conformance.value { store.mfaChallenge(tokenHash: [1], now: Self.t0 + 300, $0) } == nil)
        #expect(!(try Conformance.value { store.spendMFAChallenge(tokenHash: [1], now: Self.t0 + 300, $0) }))
        #expect(try Conformance.value { store.spendMFAChallenge(tokenHash: [1], now: Self.t0 + 299, $0) })
        #expect(!(try Conformance.value { store.spendMFAChallenge(tokenHash: [1], now: Self.t0, $0) }))
        #expect(try Conformance.value { store.mfaChallenge(tokenHash: [1], now: Self.t0, $0) } == nil)
    }

    /// One code, one recovery code, one challenge, each presented by eight
    /// callers at once: exactly one gets through.
    @Test(arguments: StoreKind.allCases) func racingCallersGetThroughOnce(_ kind: StoreKind) throws {
        let store = try kind.make()
        let alice = try user(store, "alice@example.com")
        _ = try Conformance.value { store.beginSecondFactor(userID: alice.id, sealedSecret: [1], now: Self.t0, $0) }
        _ = try Conformance.value {
            store.confirmSecondFactor(
                userID: alice.id, sealedSecret: [1], step: 1, recoveryCodeHashes: [[7]], now: Self.t0, $0)
        }
        try Conformance.value {
            store.createMFAChallenge(
                tokenHash: [4], MFAChallenge(userID: alice.id, credentialGeneration: 0, expiresAt: Self.t0 + 300), $0)
        }
        let calls: [(String, @Sendable (@escaping StoreCompletion<Bool>) -> Void)] = [
            ("step", { store.acceptSecondFactorStep(userID: alice.id, sealedSecret: [1], step: 2, $0) }),
            ("recovery code", { store.spendRecoveryCode(userID: alice.id, hash: [7], $0) }),
            ("challenge", { store.spendMFAChallenge(tokenHash: [4], now: Self.t0, $0) }),
        ]
        for (name, call) in calls {
            let wins = Guarded(0)
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                if case .success(true) = Conformance.wait(call) { wins.withLock { $0 += 1 } }
            }
            #expect(wins.withLock { $0 } == 1, "\(name)")
        }
    }
}
