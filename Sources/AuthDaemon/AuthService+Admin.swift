import AuthCore
import AuthCrypto
import AuthStore

/// The admin methods; `admin(_:_:)` has already authorised the caller.
extension AuthService {
    func createUser(_ context: CallContext) throws(AuthError) {
        let params = context.params
        guard let email = EmailRule.normalize(try params.requiredString("email")) else { throw .invalidEmail() }
        let password = try params.requiredString("password")
        try PasswordPolicy.validateNew(password, field: "password")
        let role = try params.optionalString("role") ?? "user"
        guard RoleRule.isValid(role) else { throw .invalidParams(field: "role", "Invalid role name") }
        let active = try params.optionalBool("active") ?? true
        run(on: hashPool, context) { [self] in
            if try database.user(email: email) != nil { throw StoreError.emailTaken }
            let hash = try Bcrypt.hash(Array(password.utf8), cost: settings.bcryptCost)
            let user = try database.createUser(
                email: email, passwordHash: hash, role: role, active: active, now: clock())
            event(.userCreated, "User created", context.peer, userID: user.id, email: user.email)
            return user.snapshot.publicJSON
        }
    }

    func getUser(_ context: CallContext) throws(AuthError) {
        let params = context.params
        let byID = params["id"] != nil && params["id"] != .null
        let id = byID ? try params.requiredID("id") : nil
        let email = byID ? nil : try params.requiredString("email")
        run(on: storePool, context) { [self] in
            let user: UserRecord?
            if let id {
                user = try database.user(id: id)
            } else {
                user = try EmailRule.normalize(email!).flatMap { try database.user(email: $0) }
            }
            guard let user else { throw AuthError.notFound }
            return user.snapshot.publicJSON
        }
    }

    func listUsers(_ context: CallContext) throws(AuthError) {
        let limit = try context.params.optionalInt("limit") ?? 100
        guard (1...1000).contains(limit) else { throw .invalidParams(field: "limit", "limit must be 1 to 1000") }
        var after: Int64 = 0
        if let cursor = try context.params.optionalString("after") {
            guard let decoded = UserCursor.decode(cursor) else {
                throw .invalidParams(field: "after", "Invalid cursor")
            }
            after = decoded
        }
        run(on: storePool, context) { [self, after] in
            let users = try database.listUsers(after: after, limit: Int(limit) + 1)
            let page = users.prefix(Int(limit))
            let next: JSONValue = users.count > Int(limit) ? .string(UserCursor.encode(page.last!.id)) : .null
            return .object(["users": .array(page.map(\.snapshot.publicJSON)), "next": next])
        }
    }

    func updateUser(_ context: CallContext) throws(AuthError) {
        let params = context.params
        let id = try params.requiredID("id")
        let role = try params.optionalString("role")
        if let role, !RoleRule.isValid(role) { throw .invalidParams(field: "role", "Invalid role name") }
        let active = try params.optionalBool("active")
        var email: String?
        if let raw = try params.optionalString("email") {
            guard let normalized = EmailRule.normalize(raw) else { throw .invalidEmail() }
            email = normalized
        }
        run(on: storePool, context) { [self, email] in
            let before = database.view.user(id: id)
            let user = try database.updateUser(id: id, role: role, active: active, email: email, now: clock())
            event(.userUpdated, "User updated", context.peer, userID: user.id, email: user.email)
            if active == false && before?.active == true {
                event(
                    .tokenRevoked, "Sessions revoked by deactivation", context.peer, userID: user.id,
                    reason: "deactivated")
            }
            return user.snapshot.publicJSON
        }
    }

    func setPassword(_ context: CallContext) throws(AuthError) {
        let id = try context.params.requiredID("id")
        let password = try context.params.requiredString("password")
        try PasswordPolicy.validateNew(password, field: "password")
        run(on: hashPool, context) { [self] in
            guard database.view.user(id: id) != nil else { throw AuthError.notFound }
            let hash = try Bcrypt.hash(Array(password.utf8), cost: settings.bcryptCost)
            let revoked = try database.setPasswordHash(userID: id, hash: hash, keepingSession: nil, now: clock())
            event(
                .userUpdated, "Password reset; \(revoked) sessions revoked", context.peer, userID: id,
                reason: "password_reset")
            return .object(["changed": .bool(true)])
        }
    }

    func deleteUser(_ context: CallContext) throws(AuthError) {
        let id = try context.params.requiredID("id")
        run(on: storePool, context) { [self] in
            try database.deleteUser(id: id)
            event(.userDeleted, "User deleted", context.peer, userID: id)
            return .object(["deleted": .bool(true)])
        }
    }

    func listSessions(_ context: CallContext) throws(AuthError) {
        let userID = try context.params.requiredID("user_id")
        run(on: storePool, context) { [self] in
            guard try database.user(id: userID) != nil else { throw AuthError.notFound }
            let sessions = try database.liveSessions(userID: userID, now: clock())
            return .object(["sessions": .array(sessions.map(\.publicJSON))])
        }
    }

    func revokeSessions(_ context: CallContext) throws(AuthError) {
        let params = context.params
        if let sessionID = try params.optionalString("id") {
            run(on: storePool, context) { [self] in
                let revoked = try database.revokeSession(id: sessionID, reason: "session.revoke", now: clock())
                if !revoked, try !database.sessionExists(id: sessionID) { throw AuthError.notFound }
                if revoked {
                    event(.tokenRevoked, "Session revoked by an admin", context.peer, reason: "session.revoke")
                }
                return .object(["revoked": .int(revoked ? 1 : 0)])
            }
        } else if params["user_id"] != nil {
            let userID = try params.requiredID("user_id")
            run(on: storePool, context) { [self] in
                guard try database.user(id: userID) != nil else { throw AuthError.notFound }
                let count = try database.revokeSessions(
                    userID: userID, keeping: nil, reason: "session.revoke", now: clock())
                event(
                    .tokenRevoked, "\(count) sessions revoked by an admin", context.peer, userID: userID,
                    reason: "session.revoke")
                return .object(["revoked": .int(count)])
            }
        } else {
            throw .invalidParams(field: "id", "id or user_id is required")
        }
    }

    func rotateKeys(_ context: CallContext) throws(AuthError) {
        run(on: storePool, context) { [self] in
            let settings = self.settings
            let kid = try keys.rotate(now: clock(), retention: settings.accessTTL + settings.clockLeeway)
            verifiedTokens.removeAll()
            event(.tokenCreated, "Access signing key rotated", context.peer, reason: "keys.rotate")
            return .object(["kid": .string(kid), "algorithm": .string(settings.algorithm)])
        }
    }
}

/// The opaque `user.list` cursor: the last id, base64url-encoded.
enum UserCursor {
    static func encode(_ id: Int64) -> String { Base64URL.encode(Array("u:\(id)".utf8)) }

    static func decode(_ cursor: String) -> Int64? {
        guard let bytes = Base64URL.decode(cursor) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix("u:"), let id = Int64(text.dropFirst(2)), id >= 0 else { return nil }
        return id
    }
}
