import AuthCore
import AuthServiceCore
import Testing

/// The races of the security review, made deterministic: the store runs an
/// admin's change exactly between a request's password check and its write.
/// (`CredentialRaceTests` has the same races against the real daemon, with
/// requests really in flight.)
@Suite struct CredentialRaceRulesTests {
    func raceHarness() throws -> (ServiceHarness, InMemoryCredentialStore, Int64) {
        let harness = try ServiceHarness(.memory)
        let id = try harness.createUser("alice@example.com")
        return (harness, harness.store as! InMemoryCredentialStore, id)
    }

    @Test func aResetDuringTheLoginHashWinsAndTheLoginOpensNoSession() throws {
        let (harness, store, id) = try raceHarness()
        store.beforeNext("createSession") {
            _ = harness.call("user.set_password", ["id": .number("\(id)"), "password": .string("the admin's new one")])
        }
        let login = harness.call(
            "auth.login", ["email": .string("alice@example.com"), "password": .string(ServiceHarness.password)])
        #expect(login.reason == "invalid_credentials")
        #expect(harness.store.view.counts.sessions == 0)
        #expect(harness.sinks.reasons(of: .loginFail) == ["credentials_changed"])
        #expect(
            harness.call(
                "auth.login", ["email": .string("alice@example.com"), "password": .string("the admin's new one")]
            )
            .object != nil)
    }

    @Test func aDeactivationDuringTheLoginHashWins() throws {
        let (harness, store, id) = try raceHarness()
        store.beforeNext("createSession") {
            _ = harness.call("user.update", ["id": .number("\(id)"), "active": .bool(false)])
        }
        let login = harness.call(
            "auth.login", ["email": .string("alice@example.com"), "password": .string(ServiceHarness.password)])
        #expect(login.reason == "invalid_credentials")
        #expect(harness.store.view.counts.sessions == 0)
    }

    @Test func aPasswordChangeNeverOverwritesAResetAnsweredMeanwhile() throws {
        let (harness, store, id) = try raceHarness()
        let tokens = try harness.login("alice@example.com")
        store.beforeNext("setPasswordHash") {
            _ = harness.call("user.set_password", ["id": .number("\(id)"), "password": .string("the admin's new one")])
        }
        let change = harness.call(
            "user.change_password",
            [
                "access_token": .string(tokens.access), "current_password": .string(ServiceHarness.password),
                "new_password": .string("the user's new one"),
            ])
        #expect(change.reason == "invalid_credentials")
        #expect(harness.sinks.reasons(of: .loginFail) == ["credentials_changed"])
        // The admin's password is the one that holds, and the attempt did
        // not count as a guess against the account.
        #expect(try harness.login("alice@example.com", password: "the admin's new one").access.isEmpty == false)
        #expect(
            harness.call(
                "auth.login", ["email": .string("alice@example.com"), "password": .string("the user's new one")]
            ).reason == "invalid_credentials")
    }
}
