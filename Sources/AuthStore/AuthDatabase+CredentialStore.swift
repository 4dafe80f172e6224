import AuthCore
import AuthServiceCore

/// `AuthDatabase` as the service's store. SQLite calls are synchronous:
/// each completes on the calling thread (a store or hash queue worker)
/// before the call returns.
extension AuthDatabase: CredentialStore {
    /// Runs `body` and completes with its value; a `StoreError` stays itself,
    /// anything else (SQLite, I/O) becomes `failed` with its description.
    private func complete<Value>(_ done: StoreCompletion<Value>, _ body: () throws -> Value) {
        do {
            done(.success(try body()))
        } catch let error as StoreError {
            done(.failure(error))
        } catch {
            done(.failure(.failed(String(describing: error))))
        }
    }

    public func createUser(
        email: String, passwordHash: String, role: String, active: Bool, now: Int64,
        _ done: @escaping StoreCompletion<UserRecord>
    ) {
        complete(done) {
            try createUser(email: email, passwordHash: passwordHash, role: role, active: active, now: now)
        }
    }

    public func user(id: Int64, _ done: @escaping StoreCompletion<UserRecord?>) {
        complete(done) { try user(id: id) }
    }

    public func user(email: String, _ done: @escaping StoreCompletion<UserRecord?>) {
        complete(done) { try user(email: email) }
    }

    public func listUsers(after: Int64, limit: Int, _ done: @escaping StoreCompletion<[UserRecord]>) {
        complete(done) { try listUsers(after: after, limit: limit) }
    }

    public func updateUser(
        id: Int64, role: String?, active: Bool?, email: String?, now: Int64,
        _ done: @escaping StoreCompletion<UserRecord>
    ) {
        complete(done) { try updateUser(id: id, role: role, active: active, email: email, now: now) }
    }

    public func setPasswordHash(
        userID: Int64, hash: String, keepingSession: String?, expectedGeneration: Int64?, now: Int64,
        _ done: @escaping StoreCompletion<Int>
    ) {
        complete(done) {
            try setPasswordHash(
                userID: userID, hash: hash, keepingSession: keepingSession, expectedGeneration: expectedGeneration,
                now: now)
        }
    }

    public func upgradePasswordHash(
        userID: Int64, from old: String, to new: String, _ done: @escaping StoreCompletion<Void>
    ) {
        complete(done) { try upgradePasswordHash(userID: userID, from: old, to: new) }
    }

    public func hasPasswordHash(prefix: String, _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { try hasPasswordHash(prefix: prefix) }
    }

    public func deleteUser(id: Int64, _ done: @escaping StoreCompletion<Void>) {
        complete(done) { try deleteUser(id: id) }
    }

    public func createSession(
        id: String, userID: Int64, refreshHash: [UInt8], now: Int64, expiresAt: Int64, guard sessionGuard: SessionGuard,
        _ done: @escaping StoreCompletion<[String]>
    ) {
        complete(done) {
            try createSession(
                id: id, userID: userID, refreshHash: refreshHash, now: now, expiresAt: expiresAt, guard: sessionGuard)
        }
    }

    public func rotateRefreshToken(
        sessionID: String, presented: [UInt8], presentedIssuedAt: Int64?, next: [UInt8], now: Int64,
        expiresAt: Int64, grace: RefreshGrace?, _ done: @escaping StoreCompletion<RotationOutcome>
    ) {
        complete(done) {
            try rotateRefreshToken(
                sessionID: sessionID, presented: presented, presentedIssuedAt: presentedIssuedAt, next: next,
                now: now, expiresAt: expiresAt, grace: grace)
        }
    }

    public func logout(
        sessionID: String, presented: [UInt8], presentedIssuedAt: Int64?, graceWindow: Int64, now: Int64,
        _ done: @escaping StoreCompletion<LogoutOutcome>
    ) {
        complete(done) {
            try logout(
                sessionID: sessionID, presented: presented, presentedIssuedAt: presentedIssuedAt,
                graceWindow: graceWindow, now: now)
        }
    }

    public func sweepRefreshGrace(now: Int64, _ done: @escaping StoreCompletion<Int>) {
        complete(done) { try sweepRefreshGrace(now: now) }
    }

    public func revokeSession(id: String, reason: String, now: Int64, _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { try revokeSession(id: id, reason: reason, now: now) }
    }

    public func sessionExists(id: String, _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { try sessionExists(id: id) }
    }

    public func revokeSessions(
        userID: Int64, keeping: String?, reason: String, now: Int64, _ done: @escaping StoreCompletion<Int>
    ) {
        complete(done) { try revokeSessions(userID: userID, keeping: keeping, reason: reason, now: now) }
    }

    public func liveSessions(userID: Int64, now: Int64, _ done: @escaping StoreCompletion<[SessionRecord]>) {
        complete(done) { try liveSessions(userID: userID, now: now) }
    }

    public func loadFailureCounters() throws(StoreError) -> [String: LoginThrottle.Counter] {
        do {
            return try storedFailureCounters()
        } catch let error as StoreError {
            throw error
        } catch {
            throw .failed(String(describing: error))
        }
    }

    public func saveFailureCounters(
        _ current: @escaping @Sendable () -> [LoginThrottle.Change], _ done: @escaping StoreCompletion<Void>
    ) {
        complete(done) { try saveFailureCounters(current) }
    }

    // MARK: Second factor

    public func secondFactor(userID: Int64, _ done: @escaping StoreCompletion<SecondFactorRecord?>) {
        complete(done) { try secondFactor(userID: userID) }
    }

    public func beginSecondFactor(
        userID: Int64, sealedSecret: [UInt8], now: Int64, _ done: @escaping StoreCompletion<Bool>
    ) {
        complete(done) { try beginSecondFactor(userID: userID, sealedSecret: sealedSecret, now: now) }
    }

    public func confirmSecondFactor(
        userID: Int64, sealedSecret: [UInt8], step: Int64, recoveryCodeHashes: [[UInt8]], now: Int64,
        _ done: @escaping StoreCompletion<Bool>
    ) {
        complete(done) {
            try confirmSecondFactor(
                userID: userID, sealedSecret: sealedSecret, step: step, recoveryCodeHashes: recoveryCodeHashes,
                now: now)
        }
    }

    public func acceptSecondFactorStep(
        userID: Int64, sealedSecret: [UInt8], step: Int64, _ done: @escaping StoreCompletion<Bool>
    ) {
        complete(done) { try acceptSecondFactorStep(userID: userID, sealedSecret: sealedSecret, step: step) }
    }

    public func spendRecoveryCode(userID: Int64, hash: [UInt8], _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { try spendRecoveryCode(userID: userID, hash: hash) }
    }

    public func replaceRecoveryCodes(userID: Int64, hashes: [[UInt8]], _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { try replaceRecoveryCodes(userID: userID, hashes: hashes) }
    }

    public func removeSecondFactor(userID: Int64, now: Int64, _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { try removeSecondFactor(userID: userID, now: now) }
    }

    public func createMFAChallenge(
        tokenHash: [UInt8], _ challenge: MFAChallenge, _ done: @escaping StoreCompletion<Void>
    ) {
        complete(done) { try createMFAChallenge(tokenHash: tokenHash, challenge) }
    }

    public func mfaChallenge(tokenHash: [UInt8], now: Int64, _ done: @escaping StoreCompletion<MFAChallenge?>) {
        complete(done) { try mfaChallenge(tokenHash: tokenHash, now: now) }
    }

    public func spendMFAChallenge(tokenHash: [UInt8], now: Int64, _ done: @escaping StoreCompletion<Bool>) {
        complete(done) { try spendMFAChallenge(tokenHash: tokenHash, now: now) }
    }
}
