import AuthCore
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.timeLimit(.minutes(5))) struct AdminTests {
    static let adminMethods = [
        "user.create", "user.get", "user.list", "user.update", "user.set_password", "user.delete", "session.list",
        "session.revoke", "keys.rotate", "stats", "user.totp.reset", "sys.backup", "sys.metrics",
    ]

    @Test func theAdminMethodsAreTheOnesTheDaemonTreatsAsAdmin() {
        #expect(Set(AdminTests.adminMethods) == Set(RPCMethod.allCases.filter(\.requiresAdmin).map(\.rawValue)))
    }

    @Test(.enabled(if: getuid() == 0, "needs root to drop to another uid"))
    func paramsOfTheWrongShapeAreRefusedOnlyAfterAuthorisation() throws {
        try withDaemon { daemon, rpc in
            let line = #"{"jsonrpc":"2.0","id":1,"method":"session.revoke","params":["not","an","object"]}"# + "\n"
            // A non-admin peer: 403, as for any other params.
            let outsider = try callAsUser(uid: 65534, socketPath: daemon.socketPath, request: line)
            #expect(outsider.errorCode == 403 && outsider.errorReason == "forbidden", "\(outsider)")
            // An admin (root) learns what is wrong with the params.
            try rpc.send(line)
            let admin = try rpc.readResponse()
            #expect(admin.errorCode == -32602 && admin.errorField == "params", "\(admin)")
            // A public method: -32602 for anyone.
            let publicCall = try callAsUser(
                uid: 65534, socketPath: daemon.socketPath,
                request: #"{"jsonrpc":"2.0","id":2,"method":"token.verify","params":[1]}"# + "\n")
            #expect(publicCall.errorCode == -32602 && publicCall.errorField == "params", "\(publicCall)")
            // A notification with such params gets no answer, and the
            // connection goes on.
            try rpc.send(#"{"jsonrpc":"2.0","method":"sys.health","params":[1]}"# + "\n")
            #expect(try rpc.call("sys.health")["result"] != nil)
        }
    }

    @Test(.enabled(if: getuid() == 0, "needs root to drop to another uid"))
    func aNonRootPeerIsRefusedEveryAdminMethodBeforeParamsAreRead() throws {
        try withDaemon { daemon, rpc in
            for method in AdminTests.adminMethods {
                // Deliberately malformed params: forbidden comes first.
                let request = RPCConnection.requestLine(id: .int(1), method: method, params: ["id": .bool(true)])
                let answer = try callAsUser(uid: 65534, socketPath: daemon.socketPath, request: request)
                #expect(answer.errorCode == 403, "\(method)")
                #expect(answer.errorReason == "forbidden", "\(method)")
            }
            // Public methods still work for that peer.
            let health = try callAsUser(
                uid: 65534, socketPath: daemon.socketPath,
                request: RPCConnection.requestLine(id: .int(1), method: "sys.health", params: nil))
            #expect(health["result"] != nil)
            let refused = daemon.events(named: "authz_fail")
            #expect(refused.count == AdminTests.adminMethods.count)
            #expect(refused.allSatisfy { $0["AUTHD_PEER_UID"] == .string("65534") })
            _ = rpc
        }
    }

    @Test(.enabled(if: getuid() == 0, "needs root to drop to another uid"))
    func anAdminUsersAccessTokenAuthorisesANonRootPeer() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("root@example.com", role: "admin")
            try rpc.createUser("plain@example.com", role: "user")
            let admin = try rpc.login("root@example.com")
            let plain = try rpc.login("plain@example.com")
            let allowed = try callAsUser(
                uid: 65534, socketPath: daemon.socketPath,
                request: RPCConnection.requestLine(
                    id: .int(1), method: "user.list", params: ["access_token": .string(admin.access)]))
            #expect(allowed["result"]?.objectValue?["users"] != nil)
            let refused = try callAsUser(
                uid: 65534, socketPath: daemon.socketPath,
                request: RPCConnection.requestLine(
                    id: .int(1), method: "user.list", params: ["access_token": .string(plain.access)]))
            #expect(refused.errorReason == "forbidden")
        }
    }

    @Test(.enabled(if: getuid() == 0, "needs root to drop to another uid"))
    func configuredAdminUIDsAndGroupsAreAdmins() throws {
        try withDaemon(flags: ["admin-uids": "65534"]) { daemon, _ in
            let answer = try callAsUser(
                uid: 65534, socketPath: daemon.socketPath,
                request: RPCConnection.requestLine(id: .int(1), method: "stats", params: nil))
            #expect(answer["result"] != nil)
        }
        try withDaemon(flags: ["admin-groups": "65534"]) { daemon, _ in
            let answer = try callAsUser(
                uid: 65534, socketPath: daemon.socketPath,
                request: RPCConnection.requestLine(id: .int(1), method: "stats", params: nil))
            #expect(answer["result"] != nil)
        }
    }

    @Test func userLifecycleThroughAdminMethods() throws {
        try withDaemon { daemon, rpc in
            let created = try rpc.result(
                "user.create",
                [
                    "email": .string("New@Example.com"), "password": .string(defaultPassword),
                    "role": .string("auditor"),
                    "active": .bool(false),
                ])
            let id = try #require(created.string("id"))
            #expect(created.string("email") == "new@example.com")
            #expect(created.string("role") == "auditor")
            #expect(created["active"] == .bool(false))
            #expect(created["password_hash"] == nil)
            #expect(try rpc.result("user.get", ["id": .string(id)]) == created)
            #expect(try rpc.result("user.get", ["id": .int(Int(id)!)]) == created)
            #expect(try rpc.result("user.get", ["email": .string(" NEW@example.com")]) == created)

            let updated = try rpc.result(
                "user.update",
                [
                    "id": .string(id), "role": .string("user"), "active": .bool(true),
                    "email": .string("renamed@example.com"),
                ])
            #expect(updated.string("email") == "renamed@example.com")
            #expect(updated["active"] == .bool(true))
            _ = try rpc.login("renamed@example.com")

            #expect(
                try rpc.result("user.set_password", ["id": .string(id), "password": .string("another password")])[
                    "changed"] == .bool(true))
            #expect(
                try rpc.call(
                    "auth.login", ["email": .string("renamed@example.com"), "password": .string(defaultPassword)]
                ).errorReason == "invalid_credentials")
            _ = try rpc.login("renamed@example.com", password: "another password")

            #expect(try rpc.result("user.delete", ["id": .string(id)])["deleted"] == .bool(true))
            #expect(try rpc.call("user.get", ["id": .string(id)]).errorReason == "not_found")
            for name in ["user_created", "user_updated", "user_deleted"] {
                #expect(!daemon.events(named: name).isEmpty, "\(name)")
            }
            // No event carries a password.
            #expect(!daemon.stderr.contains(defaultPassword))
            #expect(!daemon.stderr.contains("another password"))
        }
    }

    @Test func userListPagesInCreationOrder() throws {
        try withDaemon { _, rpc in
            var ids: [String] = []
            for index in 0..<7 { ids.append(try rpc.createUser("user\(index)@example.com")) }
            var seen: [String] = []
            var cursor: JSONValue = .null
            var pages = 0
            repeat {
                var params: JSONObject = ["limit": .int(3)]
                if case .string = cursor { params["after"] = cursor }
                let page = try rpc.result("user.list", params)
                guard case .array(let users)? = page["users"] else { throw DaemonError("no users") }
                seen += users.compactMap { $0.objectValue?.string("id") }
                cursor = page["next"] ?? .null
                pages += 1
            } while cursor != .null && pages < 10
            #expect(seen == ids)
            #expect(pages == 3)
            guard case .array(let all)? = try rpc.result("user.list")["users"] else { throw DaemonError("no users") }
            #expect(all.count == 7)
        }
    }

    @Test func sessionListAndRevoke() throws {
        try withDaemon { daemon, rpc in
            let id = try rpc.createUser("s@example.com")
            let one = try rpc.login("s@example.com")
            let two = try rpc.login("s@example.com")
            guard case .array(let sessions)? = try rpc.result("session.list", ["user_id": .string(id)])["sessions"]
            else {
                throw DaemonError("no sessions")
            }
            #expect(sessions.count == 2)
            let first = try #require(sessions.first?.objectValue)
            for key in ["id", "created_at", "last_used_at", "expires_at"] { #expect(first[key] != nil, "\(key)") }
            let sessionID = try #require(first.string("id"))
            #expect(try rpc.result("session.revoke", ["id": .string(sessionID)])["revoked"] == .int(1))
            #expect(try rpc.result("session.revoke", ["id": .string(sessionID)])["revoked"] == .int(0))
            let alive = [one, two].filter { (try? rpc.verify($0.access)["result"]) != nil }
            #expect(alive.count == 1)
            #expect(try rpc.result("session.revoke", ["user_id": .string(id)])["revoked"] == .int(1))
            guard case .array(let none)? = try rpc.result("session.list", ["user_id": .string(id)])["sessions"] else {
                throw DaemonError("no sessions")
            }
            #expect(none.isEmpty)
            #expect(daemon.events(named: "authn_token_revoked").count == 2)
        }
    }

    @Test func statsCountsMethodsAndQueues() throws {
        try withDaemon { _, rpc in
            for _ in 0..<5 { _ = try rpc.call("sys.health") }
            _ = try rpc.call("token.verify", ["token": .string("x")])
            let stats = try rpc.result("stats")
            #expect(stats["uptime_s"]?.int64Value != nil)
            let health = try #require(stats["methods"]?.objectValue?["sys.health"]?.objectValue)
            #expect(health["count"] == .int(5))
            #expect(health["errors"] == .int(0))
            #expect(health["p50_us"]?.int64Value != nil)
            #expect(health["p99_us"]?.int64Value != nil)
            #expect(stats["methods"]?.objectValue?["token.verify"]?.objectValue?["errors"] == .int(1))
            let hash = try #require(stats["queues"]?.objectValue?["hash"]?.objectValue)
            #expect(hash["capacity"] == .int(1024))
            #expect(hash["depth"]?.int64Value != nil)
        }
    }

    @Test func keysRotateKeepsOldTokensVerifying() throws {
        try withDaemon { daemon, rpc in
            try rpc.createUser("k@example.com")
            let before = try rpc.login("k@example.com")
            let oldKid = try kid(of: before.access)
            let rotated = try rpc.result("keys.rotate")
            let newKid = try #require(rotated.string("kid"))
            #expect(rotated.string("algorithm") == "HS256")
            #expect(newKid != oldKid)
            let after = try rpc.login("k@example.com")
            #expect(try kid(of: after.access) == newKid)
            #expect(try rpc.verify(before.access)["result"] != nil)
            #expect(try rpc.verify(after.access)["result"] != nil)
            // Rotated keys live in the state dir, mode 0600, and survive a restart.
            var info = stat()
            #expect(stat(daemon.stateDirectory + "/keys/access-keyring.json", &info) == 0)
            #expect(info.st_mode & 0o777 == 0o600)
            #expect(daemon.stop() == 0)
            try daemon.start()
            let again = try daemon.connect()
            #expect(try again.verify(before.access)["result"] != nil)
            #expect(try again.verify(after.access)["result"] != nil)
            #expect(try kid(of: try again.login("k@example.com").access) == newKid)
        }
    }
}

func kid(of token: String) throws -> String {
    let header = try JSONParser.parse(Base64URLDecode(String(token.split(separator: ".")[0])))
    guard let kid = header.objectValue?.string("kid") else { throw DaemonError("no kid") }
    return kid
}

func Base64URLDecode(_ text: String) -> [UInt8] {
    var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    return Array(Data(base64Encoded: base64) ?? Data())
}
