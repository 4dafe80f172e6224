import AuthCore
import AuthCrypto

/// The admin methods; `handle` has already authorised the caller.
extension AuthService {
    func createUser(_ context: CallContext) throws(AuthError) {
        // The scheme the password was checked for is the one it is hashed in,
        // whatever a reload changes while the job waits.
        let hashing = settings.passwordHashing
        let request = try CreateUserRequest(params: context.params, scheme: hashing.scheme)
        submit(to: hashQueue, context) { [self] in
            // Checked before the hash (a taken email costs no hash), and
            // again by the store at its insert.
            context.then(waitFor { store.user(email: request.email, $0) }) { existing in
                if existing != nil { return context.fail(.emailTaken) }
                let hash: String
                switch newPasswordHash(request.password, with: hashing) {
                case .success(let value): hash = value
                case .failure(let error): return context.fail(error)
                }
                store.createUser(
                    email: request.email, passwordHash: hash, role: request.role, active: request.active,
                    now: clock()
                ) { [self] created in
                    context.answer(created) { user in
                        event(.userCreated, "User created", context.peer, userID: user.id, email: user.email)
                        return user.publicJSON
                    }
                }
            }
        }
    }

    func getUser(_ context: CallContext) throws(AuthError) {
        let request = try GetUserRequest(params: context.params)
        onStoreQueue(context) { [self] in
            let found: StoreCompletion<UserRecord?> = { result in
                context.answer(result) { user throws(AuthError) in
                    guard let user else { throw .notFound }
                    return user.publicJSON
                }
            }
            switch request {
            case .id(let id): store.user(id: id, found)
            case .email(let email?): store.user(email: email, found)
            case .email(nil): context.fail(.notFound)
            }
        }
    }

    func listUsers(_ context: CallContext) throws(AuthError) {
        let request = try ListUsersRequest(params: context.params)
        onStoreQueue(context) { [self] in
            store.listUsers(after: request.after, limit: request.limit + 1) { result in
                context.answer(result) { users in
                    let page = users.prefix(request.limit)
                    let next: JSONValue =
                        users.count > request.limit ? .string(UserCursor.encode(page.last!.id)) : .null
                    return .object(["users": .array(page.map(\.publicJSON)), "next": next])
                }
            }
        }
    }

    func updateUser(_ context: CallContext) throws(AuthError) {
        let request = try UpdateUserRequest(params: context.params)
        let active = request.active
        onStoreQueue(context) { [self] in
            let before = store.view.user(id: request.id)
            store.updateUser(id: request.id, role: request.role, active: active, email: request.email, now: clock()) {
                [self] result in
                context.answer(result) { user in
                    event(.userUpdated, "User updated", context.peer, userID: user.id, email: user.email)
                    if active == false && before?.active == true {
                        event(
                            .tokenRevoked, "Sessions revoked by deactivation", context.peer, userID: user.id,
                            reason: "deactivated")
                    }
                    return user.publicJSON
                }
            }
        }
    }

    func setPassword(_ context: CallContext) throws(AuthError) {
        let hashing = settings.passwordHashing
        let request = try SetPasswordRequest(params: context.params, scheme: hashing.scheme)
        let (id, password) = (request.id, request.password)
        submit(to: hashQueue, context) { [self] in
            guard store.view.user(id: id) != nil else { return context.fail(.notFound) }
            let hash: String
            switch newPasswordHash(password, with: hashing) {
            case .success(let value): hash = value
            case .failure(let error): return context.fail(error)
            }
            store.setPasswordHash(userID: id, hash: hash, keepingSession: nil, expectedGeneration: nil, now: clock()) {
                [self] result in
                context.answer(result) { revoked in
                    event(
                        .userUpdated, "Password reset; \(revoked) sessions revoked", context.peer, userID: id,
                        reason: "password_reset")
                    return .object(["changed": .bool(true)])
                }
            }
        }
    }

    func deleteUser(_ context: CallContext) throws(AuthError) {
        let id = try DeleteUserRequest(params: context.params).id
        onStoreQueue(context) { [self] in
            store.deleteUser(id: id) { [self] result in
                context.answer(result) { _ in
                    event(.userDeleted, "User deleted", context.peer, userID: id)
                    return .object(["deleted": .bool(true)])
                }
            }
        }
    }

    func listSessions(_ context: CallContext) throws(AuthError) {
        let userID = try ListSessionsRequest(params: context.params).userID
        onStoreQueue(context) { [self] in
            store.user(id: userID) { [self] found in
                context.then(found) { user in
                    guard user != nil else { return context.fail(.notFound) }
                    store.liveSessions(userID: userID, now: clock()) { sessions in
                        context.answer(sessions) { .object(["sessions": .array($0.map(\.publicJSON))]) }
                    }
                }
            }
        }
    }

    func revokeSessions(_ context: CallContext) throws(AuthError) {
        switch try RevokeSessionsRequest(params: context.params) {
        case .session(let sessionID):
            onStoreQueue(context) { [self] in
                store.revokeSession(id: sessionID, reason: "session.revoke", now: clock()) { [self] result in
                    context.then(result) { revoked in
                        let answer: JSONValue = .object(["revoked": .int(revoked ? 1 : 0)])
                        if revoked {
                            event(.tokenRevoked, "Session revoked by an admin", context.peer, reason: "session.revoke")
                            return context.respond(.success(answer))
                        }
                        // Nothing live: an unknown id is an error, a revoked
                        // or expired one is not.
                        store.sessionExists(id: sessionID) { exists in
                            context.answer(exists) { exists throws(AuthError) in
                                guard exists else { throw .notFound }
                                return answer
                            }
                        }
                    }
                }
            }
        case .user(let userID):
            onStoreQueue(context) { [self] in
                store.user(id: userID) { [self] found in
                    context.then(found) { user in
                        guard user != nil else { return context.fail(.notFound) }
                        store.revokeSessions(userID: userID, keeping: nil, reason: "session.revoke", now: clock()) {
                            [self] result in
                            context.answer(result) { count in
                                event(
                                    .tokenRevoked, "\(count) sessions revoked by an admin", context.peer,
                                    userID: userID, reason: "session.revoke")
                                return .object(["revoked": .int(count)])
                            }
                        }
                    }
                }
            }
        }
    }

    func rotateKeys(_ context: CallContext) throws(AuthError) {
        // On a worker that may block: the rotation writes the key files, or
        // waits for the shared key's row in the database. The store queue
        // of a store whose calls do not block starts jobs on threads that
        // must not wait (`StoreAdmission`).
        submit(to: hashQueue, context) { [self] in
            let settings = self.settings
            let kid: String
            do {
                kid = try keys.rotate(now: clock(), retention: settings.accessTTL + settings.clockLeeway)
            } catch {
                return context.fail(.internalError("key rotation: \(error)"))
            }
            verifiedTokens.removeAll()
            event(.tokenCreated, "Access signing key rotated", context.peer, reason: "keys.rotate")
            context.respond(
                .success(.object(["kid": .string(kid), "algorithm": .string(settings.algorithm.rawValue)])))
        }
    }
}
