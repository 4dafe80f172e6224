import AuthCore
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Credential changes that race logins and password changes, against the
/// real daemon with the requests really in flight at once. The user's hash
/// is made at a high cost and the daemon restarted at a low one, so a login
/// checking the old password is still hashing when the admin's change
/// (hashed at the low cost) has long been answered.
@Suite(.timeLimit(.minutes(5))) struct CredentialRaceTests {
    /// A daemon whose user `email` has a cost-13 hash, restarted at cost 10.
    private func daemonWithSlowHash(_ email: String) throws -> DaemonProcess {
        let slow = try DaemonProcess.started(flags: ["bcrypt-cost": "13"])
        try slow.connect().createUser(email)
        #expect(slow.stop() == 0)
        let fast = DaemonProcess(flags: ["bcrypt-cost": "10"], directory: slow.directory)
        try fast.start()
        return fast
    }

    private func loginLine(_ email: String, id: Int) -> String {
        RPCConnection.requestLine(
            id: .int(Int64(id)), method: "auth.login",
            params: ["email": .string(email), "password": .string(defaultPassword)])
    }

    /// Gives a request just sent time to be read and its hash to start.
    private func letTheHashStart() { usleep(150_000) }

    @Test func aLoginInFlightDoesNotSurviveAPasswordReset() throws {
        let daemon = try daemonWithSlowHash("reset@example.com")
        defer { daemon.tearDown() }
        let admin = try daemon.connect()
        let id = try #require(try admin.result("user.get", ["email": .string("reset@example.com")]).string("id"))
        let attacker = try daemon.connect()
        try attacker.send(loginLine("reset@example.com", id: 1))
        letTheHashStart()
        SecretLedger.record("a brand new password")
        let reset = try admin.call(
            "user.set_password", ["id": .string(id), "password": .string("a brand new password")])
        #expect(reset["result"] != nil, "\(reset)")
        let login = try attacker.readResponse()
        // The old password was checked before the reset committed: no session.
        #expect(login.errorCode == 401 && login.errorReason == "invalid_credentials", "\(login)")
        if let access = login["result"]?.objectValue?.string("access_token") {
            SecretLedger.record(access)
            #expect(try admin.verify(access).errorReason == "session_revoked")
        }
        let failures = daemon.events(named: "authn_login_fail").filter {
            $0["AUTHD_REASON"] == .string("credentials_changed")
        }
        #expect(failures.count == 1)
        // Only the new password works now.
        _ = try admin.login("reset@example.com", password: "a brand new password")
    }

    @Test func aLoginInFlightDoesNotSurviveADeactivation() throws {
        let daemon = try daemonWithSlowHash("gone@example.com")
        defer { daemon.tearDown() }
        let admin = try daemon.connect()
        let id = try #require(try admin.result("user.get", ["email": .string("gone@example.com")]).string("id"))
        let attacker = try daemon.connect()
        try attacker.send(loginLine("gone@example.com", id: 1))
        letTheHashStart()
        #expect(try admin.call("user.update", ["id": .string(id), "active": .bool(false)])["result"] != nil)
        let login = try attacker.readResponse()
        #expect(login.errorReason == "invalid_credentials", "\(login)")
        // Reactivation brings back no session opened by the login in flight.
        #expect(try admin.call("user.update", ["id": .string(id), "active": .bool(true)])["result"] != nil)
        if let access = login["result"]?.objectValue?.string("access_token") {
            SecretLedger.record(access)
            #expect(try admin.verify(access).errorReason == "session_revoked")
        }
        #expect(
            daemon.events(named: "authn_login_fail").contains { $0["AUTHD_REASON"] == .string("credentials_changed") })
    }

    @Test func aPasswordChangeInFlightNeverOverwritesAnAdminReset() throws {
        let daemon = try daemonWithSlowHash("victim@example.com")
        defer { daemon.tearDown() }
        let admin = try daemon.connect()
        // The attacker holds a session (a stolen password) and changes the
        // password; the admin resets it while that change is hashing.
        let attacker = try daemon.connect()
        let stolen = try attacker.login("victim@example.com")
        SecretLedger.record("attacker's password")
        SecretLedger.record("the admin's reset")
        try attacker.send(
            RPCConnection.requestLine(
                id: .int(7), method: "user.change_password",
                params: [
                    "access_token": .string(stolen.access), "current_password": .string(defaultPassword),
                    "new_password": .string("attacker's password"),
                ]))
        letTheHashStart()
        let reset = try admin.call(
            "user.set_password", ["id": .string(stolen.userID), "password": .string("the admin's reset")])
        #expect(reset["result"] != nil, "\(reset)")
        let change = try attacker.readResponse()
        #expect(change.errorReason == "invalid_credentials", "\(change)")
        // The admin's password is the one that works; the attacker's is not.
        _ = try admin.login("victim@example.com", password: "the admin's reset")
        let attempt = try admin.call(
            "auth.login", ["email": .string("victim@example.com"), "password": .string("attacker's password")])
        #expect(attempt.errorReason == "invalid_credentials")
    }

    @Test func theCostRaiseRehashDoesNotEndConcurrentLogins() throws {
        // Two logins with the right password race; the first one's rehash to
        // the higher cost must not make the second look like a credential change.
        let daemon = try DaemonProcess.started(flags: ["bcrypt-cost": "10"])
        try daemon.connect().createUser("twice@example.com")
        #expect(daemon.stop() == 0)
        let upgraded = DaemonProcess(flags: ["bcrypt-cost": "11"], directory: daemon.directory)
        try upgraded.start()
        defer { upgraded.tearDown() }
        let rpc = try upgraded.connect()
        try rpc.send(loginLine("twice@example.com", id: 1) + loginLine("twice@example.com", id: 2))
        for _ in 0..<2 {
            let response = try rpc.readResponse()
            #expect(response["result"] != nil, "\(response)")
            if let access = response["result"]?.objectValue?.string("access_token") { SecretLedger.record(access) }
            if let refresh = response["result"]?.objectValue?.string("refresh_token") { SecretLedger.record(refresh) }
        }
    }
}
