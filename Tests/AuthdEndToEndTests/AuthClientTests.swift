import AuthClient
import AuthCrypto
import AuthJSON
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// AuthClient against the real daemon.
@Suite(.timeLimit(.minutes(5))) struct AuthClientTests {
    @Test func everyPublicMethod() async throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        let auth = AuthClient(socketPath: daemon.socketPath)
        let health = try await auth.health()
        #expect(health.status == "ok")
        #expect(try await auth.jwks().isEmpty)

        let created = try await auth.admin().createUser(
            email: "Client@Example.com", password: defaultPassword, role: "editor")
        #expect(created.email == "client@example.com")
        let login = try await auth.login(email: "client@example.com", password: defaultPassword, client: "10.1.2.3")
        #expect(login.tokenType == "Bearer")
        #expect(login.expiresIn == 900)
        #expect(login.user == AuthUser(id: created.id, email: "client@example.com", role: "editor"))

        let verified = try await auth.verify(token: "Bearer " + login.accessToken, requiredRole: "editor")
        #expect(verified.user.id == created.id)
        #expect(verified.claims["sid"] != nil)
        #expect(verified.expiresAt > Int64(Date().timeIntervalSince1970))
        let me = try await auth.me(accessToken: login.accessToken)
        #expect(me == created)

        let pair = try await auth.refresh(refreshToken: login.refreshToken)
        #expect(pair.refreshToken != login.refreshToken)
        try await auth.changePassword(
            accessToken: pair.accessToken, currentPassword: defaultPassword, newPassword: "another fine password")
        let second = try await auth.login(email: "client@example.com", password: "another fine password")
        #expect(try await auth.logoutAll(accessToken: second.accessToken) == 2)
        let third = try await auth.login(email: "client@example.com", password: "another fine password")
        try await auth.logout(refreshToken: third.refreshToken)
        await #expect(throws: AuthError.sessionRevoked) { try await auth.verify(token: third.accessToken) }
    }

    /// The second factor through the client: a login that needs a code
    /// throws `secondFactorRequired` with the token `mfa` takes.
    @Test func aSecondFactorThroughTheClient() async throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        let auth = AuthClient(socketPath: daemon.socketPath)
        let created = try await auth.admin().createUser(email: "mfa@example.com", password: defaultPassword)
        let login = try await auth.login(email: "mfa@example.com", password: defaultPassword)
        let enrolment = try await auth.enrollSecondFactor(
            accessToken: login.accessToken, currentPassword: defaultPassword)
        #expect(enrolment.uri.contains("secret=\(enrolment.secret)"))
        let totp = try TOTP(secret: try #require(Base32.decode(enrolment.secret)))
        let step = totp.step(at: Int64(Date().timeIntervalSince1970))
        let codes = try await auth.confirmSecondFactor(accessToken: login.accessToken, code: totp.code(step: step))
        #expect(codes.count == 10)
        #expect(try await auth.me(accessToken: login.accessToken).mfaEnabled)
        #expect(try await auth.admin().user(id: created.id).mfaEnabled)
        var token = ""
        do {
            _ = try await auth.login(email: "mfa@example.com", password: defaultPassword)
            Issue.record("a login with a second factor must not open a session")
        } catch AuthError.secondFactorRequired(let mfaToken, let expiresIn) {
            token = mfaToken
            #expect(expiresIn == 300)
        }
        await #expect(throws: AuthError.invalidCredentials) {
            try await auth.mfa(token: token, code: totp.code(step: step))
        }
        let opened = try await auth.mfa(token: token, code: totp.code(step: step + 1), client: "10.0.0.1")
        #expect(opened.user.email == "mfa@example.com")
        let fresh = try await auth.replaceRecoveryCodes(
            accessToken: opened.accessToken, currentPassword: defaultPassword, code: codes[0])
        #expect(Set(fresh).isDisjoint(with: codes))
        try await auth.disableSecondFactor(
            accessToken: opened.accessToken, currentPassword: defaultPassword, code: fresh[0])
        #expect(try await auth.me(accessToken: opened.accessToken).mfaEnabled == false)
        #expect(try await auth.admin().resetSecondFactor(userID: created.id) == false)
    }

    @Test func everyAdminMethod() async throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        let admin = AuthClient(socketPath: daemon.socketPath).admin()
        let user = try await admin.createUser(email: "a@example.com", password: defaultPassword, active: false)
        #expect(user.active == false)
        #expect(try await admin.user(id: user.id) == user)
        #expect(try await admin.user(email: "A@example.com") == user)
        let updated = try await admin.updateUser(id: user.id, role: "ops", active: true, email: "b@example.com")
        #expect(updated.email == "b@example.com")
        #expect(updated.role == "ops")
        for index in 0..<3 { _ = try await admin.createUser(email: "u\(index)@example.com", password: defaultPassword) }
        let page = try await admin.listUsers(limit: 2)
        #expect(page.users.count == 2)
        let rest = try await admin.listUsers(limit: 10, after: page.next)
        #expect(rest.users.count == 2)
        #expect(rest.next == nil)

        try await admin.setPassword(id: user.id, password: "reset password!")
        let auth = AuthClient(socketPath: daemon.socketPath)
        _ = try await auth.login(email: "b@example.com", password: "reset password!")
        _ = try await auth.login(email: "b@example.com", password: "reset password!")
        let sessions = try await admin.sessions(userID: user.id)
        #expect(sessions.count == 2)
        #expect(try await admin.revokeSession(id: sessions[0].id) == 1)
        #expect(try await admin.revokeSessions(userID: user.id) == 1)
        #expect(try await admin.rotateKeys().isEmpty == false)
        let stats = try await admin.stats()
        #expect(stats["methods"] != nil)
        try await admin.deleteUser(id: user.id)
        await #expect(throws: AuthError.notFound) { try await admin.user(id: user.id) }
    }

    @Test func errorsMapToTheProtocolReasons() async throws {
        let daemon = try DaemonProcess.started(flags: ["access-ttl": "1", "clock-leeway": "0"])
        defer { daemon.tearDown() }
        let auth = AuthClient(socketPath: daemon.socketPath)
        let admin = auth.admin()
        _ = try await admin.createUser(email: "e@example.com", password: defaultPassword)
        await #expect(throws: AuthError.emailTaken) {
            try await admin.createUser(email: "e@example.com", password: defaultPassword)
        }
        await #expect(throws: AuthError.weakPassword(field: "password")) {
            try await admin.createUser(email: "f@example.com", password: "short")
        }
        await #expect(throws: AuthError.invalidEmail) {
            try await admin.createUser(email: "nope", password: defaultPassword)
        }
        await #expect(throws: AuthError.invalidCredentials) {
            try await auth.login(email: "e@example.com", password: "wrong password")
        }
        await #expect(throws: AuthError.tokenInvalid) { try await auth.verify(token: "not.a.token") }
        await #expect(throws: AuthError.noToken) { try await auth.verify(token: "") }
        let login = try await auth.login(email: "e@example.com", password: defaultPassword)
        _ = try await auth.refresh(refreshToken: login.refreshToken)
        await #expect(throws: AuthError.refreshReused) { try await auth.refresh(refreshToken: login.refreshToken) }
        let fresh = try await auth.login(email: "e@example.com", password: defaultPassword)
        try await Task.sleep(for: .milliseconds(2100))
        await #expect(throws: AuthError.tokenExpired) { try await auth.verify(token: fresh.accessToken) }
        for _ in 0..<5 { _ = try? await auth.login(email: "locked@example.com", password: "whatever1") }
        do {
            _ = try await auth.login(email: "locked@example.com", password: "whatever1")
            Issue.record("not rate limited")
        } catch let error as AuthError {
            guard case .rateLimited(let retryAfter) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect((retryAfter ?? 0) >= 1)
            #expect(error.retryAfter == retryAfter)
        }
    }

    @Test func aThousandConcurrentCallsShareOneConnection() async throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        let auth = AuthClient(socketPath: daemon.socketPath)
        _ = try await auth.admin().createUser(email: "c@example.com", password: defaultPassword)
        let token = try await auth.login(email: "c@example.com", password: defaultPassword).accessToken
        let emails = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<1000 { group.addTask { try await auth.verify(token: token).user.email } }
            var emails: [String] = []
            for try await email in group { emails.append(email) }
            return emails
        }
        #expect(emails.count == 1000)
        #expect(Set(emails) == ["c@example.com"])
        // One connection served them all (the daemon saw one peer connection).
        let connections = try String(contentsOfFile: "/proc/\(daemon.pid)/net/unix", encoding: .utf8)
            .split(separator: "\n").filter { $0.hasSuffix(daemon.socketPath) }.count
        #expect(connections <= 2)  // the listener, and this client's connection
    }

    @Test func reconnectsAfterTheDaemonRestarts() async throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        let auth = AuthClient(socketPath: daemon.socketPath)
        #expect(try await auth.health().status == "ok")
        #expect(daemon.stop() == 0)
        await #expect(throws: AuthError.self) { try await auth.health() }
        try daemon.start()
        #expect(try await auth.health().status == "ok")
    }

    @Test func aDaemonThatDoesNotAnswerTimesOut() async throws {
        let directory = DaemonProcess.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/silent.sock"
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        listen(listener, 8)  // accepts in the kernel, never reads or answers
        let auth = AuthClient(socketPath: path, timeout: .milliseconds(300))
        await #expect(throws: AuthError.timeout) { try await auth.health() }
        await #expect(
            throws: AuthError.unreachable("cannot connect to /nonexistent/authd.sock: No such file or directory")
        ) {
            try await AuthClient(socketPath: "/nonexistent/authd.sock").health()
        }
    }

    @Test func theExampleGateAllowsAndDenies() throws {
        let daemon = try DaemonProcess.started()
        defer { daemon.tearDown() }
        let rpc = try daemon.connect()
        try rpc.createUser("gate@example.com", role: "editor")
        let token = try rpc.login("gate@example.com").access
        func gate(_ token: String, _ role: String) throws -> (Int32, String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: DaemonProcess.binary)
                .deletingLastPathComponent().appendingPathComponent("authd-gate")
            process.arguments = [token, role]
            process.environment = ["AUTHD_SOCKET": daemon.socketPath]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            process.waitUntilExit()
            return (
                process.terminationStatus,
                String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            )
        }
        let allowed = try gate(token, "editor")
        #expect(allowed.0 == 0)
        #expect(allowed.1.hasPrefix("allow: gate@example.com"))
        let denied = try gate(token, "admin")
        #expect(denied.0 == 1)
        #expect(denied.1.hasPrefix("deny: forbidden"))
        #expect(try gate("garbage", "editor").0 == 1)
    }
}
