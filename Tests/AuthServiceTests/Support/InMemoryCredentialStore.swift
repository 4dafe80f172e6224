import AuthCore
import AuthServiceCore
import Foundation

/// A store in memory, for in-process tests of the service: the contract of
/// `CredentialStore` (which `StoreConformanceTests` checks it keeps, like
/// the SQLite store), with no durability. Each call completes inline; with
/// `completesLater`, on another thread afterwards, as a networked store would.
final class InMemoryCredentialStore: CredentialStore {
    private struct Session {
        var userID: Int64
        var createdAt: Int64
        var lastUsedAt: Int64
        var expiresAt: Int64
        var revokedAt: Int64?
        /// The current refresh token: its hash and when it was issued.
        var tokenHash: [UInt8]
        var tokenIssuedAt: Int64
        var tokenExpiresAt: Int64
        /// The grace kept for the token spent last, if any.
        var grace: Grace?
    }

    private struct Grace {
        var spentHash: [UInt8]
        var nextHash: [UInt8]
        var spentAt: Int64
        var keptUntil: Int64
        var replays: Int
        var sealedNext: [UInt8]
    }

    private struct Contents {
        var users: [Int64: UserRecord] = [:]
        var nextUserID: Int64 = 1
        var sessions: [String: Session] = [:]
        var counters: [String: LoginThrottle.Counter] = [:]
        var factors: [Int64: SecondFactorRecord] = [:]
        var recoveryCodes: [Int64: Set<[UInt8]>] = [:]
        var challenges: [[UInt8]: MFAChallenge] = [:]
    }

    let view = LiveView()
    private let contents = Guarded(Contents())
    private let completesLater: Bool
    private let failing = Guarded<String?>(nil)

    private let hooks = Guarded<[String: @Sendable () -> Void]>([:])

    private let sync = Guarded<Double?>(nil)

    /// `createSession` answers parked while held (nil: not holding).
    private let heldSessionAnswers = Guarded<[@Sendable () -> Void]?>(nil)

    /// From now, `createSession` commits but its answer waits for
    /// `releaseSessionAnswers`: a networked store slow to answer.
    func holdSessionAnswers() { heldSessionAnswers.withLock { $0 = [] } }

    /// Sessions written whose answers are held.
    var heldSessionAnswerCount: Int { heldSessionAnswers.withLock { $0?.count ?? 0 } }

    /// Delivers the held answers and stops holding.
    func releaseSessionAnswers() {
        let held = heldSessionAnswers.withLock { held in
            defer { held = nil }
            return held ?? []
        }
        for answer in held { answer() }
    }

    /// What the store reports as the age of its last sync (nil: always in
    /// sync, as SQLite; infinite: a committed write not in the view yet).
    func reportSecondsSinceSync(_ seconds: Double?) { sync.withLock { $0 = seconds } }
    var secondsSinceSync: Double? { sync.withLock { $0 } }

    /// While set, every write fails with this cause (a lost disk or link).
    func failWrites(_ cause: String?) { failing.withLock { $0 = cause } }

    /// Runs `hook` once, just before the next `createSession` or
    /// `setPasswordHash` (by name) commits: what another request does
    /// while this one is between its check and its write.
    func beforeNext(_ operation: String, _ hook: @escaping @Sendable () -> Void) {
        hooks.withLock { $0[operation] = hook }
    }

    private func runHook(_ operation: String) {
        hooks.withLock { $0.removeValue(forKey: operation) }?()
    }

    init(completesLater: Bool = false) {
        self.completesLater = completesLater
    }

    /// Commits `body` under the lock, feeds the view its changes in commit
    /// order (still under the lock, as SQLite's writer does), then completes.
    private func write<Value: Sendable>(
        _ done: @escaping StoreCompletion<Value>,
        _ body: (inout Contents, inout [LiveView.Change]) throws(StoreError) -> Value
    ) {
        if let cause = failing.withLock({ $0 }) { return deliver(.failure(.failed(cause)), done) }
        let result = contents.withLock { contents -> Result<Value, StoreError> in
            var changes: [LiveView.Change] = []
            var copy = contents
            do throws(StoreError) {
                let value = try body(&copy, &changes)
                contents = copy
                view.apply(changes)
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        deliver(result, done)
    }

    private func read<Value: Sendable>(
        _ done: @escaping StoreCompletion<Value>, _ body: (Contents) throws(StoreError) -> Value
    ) {
        let result = contents.withLock { contents -> Result<Value, StoreError> in
            do throws(StoreError) { return .success(try body(contents)) } catch { return .failure(error) }
        }
        deliver(result, done)
    }

    private func deliver<Value: Sendable>(_ result: Result<Value, StoreError>, _ done: @escaping StoreCompletion<Value>)
    {
        if completesLater {
            Thread.detachNewThread { done(result) }
        } else {
            done(result)
        }
    }

    // MARK: Users

    func createUser(
        email: String, passwordHash: String, role: String, active: Bool, now: Int64,
        _ done: @escaping StoreCompletion<UserRecord>
    ) {
        write(done) { contents, changes throws(StoreError) in
            guard !contents.users.values.contains(where: { $0.email == email }) else { throw .emailTaken }
            let user = UserRecord(
                id: contents.nextUserID, email: email, passwordHash: passwordHash, role: role, active: active,
                createdAt: now, updatedAt: now)
            contents.nextUserID += 1
            contents.users[user.id] = user
            changes.append(.upsertUser(user.snapshot))
            return user
        }
    }

    func user(id: Int64, _ done: @escaping StoreCompletion<UserRecord?>) {
        read(done) { $0.users[id] }
    }

    func user(email: String, _ done: @escaping StoreCompletion<UserRecord?>) {
        read(done) { contents in contents.users.values.first { $0.email == email } }
    }

    func listUsers(after: Int64, limit: Int, _ done: @escaping StoreCompletion<[UserRecord]>) {
        read(done) { contents in
            Array(contents.users.values.filter { $0.id > after }.sorted { $0.id < $1.id }.prefix(limit))
        }
    }

    func updateUser(
        id: Int64, role: String?, active: Bool?, email: String?, now: Int64,
        _ done: @escaping StoreCompletion<UserRecord>
    ) {
        write(done) { contents, changes throws(StoreError) in
            guard var user = contents.users[id] else { throw .notFound }
            if let email, contents.users.values.contains(where: { $0.email == email && $0.id != id }) {
                throw .emailTaken
            }
            if user.applyUpdate(role: role, email: email, active: active, now: now) {
                Self.revokeSessions(&contents, &changes, userID: id, keeping: nil, now: now)
            }
            contents.users[id] = user
            changes.append(.upsertUser(user.snapshot))
            return user
        }
    }

    func setPasswordHash(
        userID: Int64, hash: String, keepingSession: String?, expectedGeneration: Int64?, now: Int64,
        _ done: @escaping StoreCompletion<Int>
    ) {
        runHook("setPasswordHash")
        write(done) { contents, changes throws(StoreError) in
            guard var user = contents.users[userID] else { throw .notFound }
            if let expectedGeneration, expectedGeneration != user.credentialGeneration { throw .credentialsChanged }
            user.passwordHash = hash
            user.updatedAt = now
            user.credentialGeneration += 1
            contents.users[userID] = user
            return Self.revokeSessions(&contents, &changes, userID: userID, keeping: keepingSession, now: now)
        }
    }

    func upgradePasswordHash(userID: Int64, from old: String, to new: String, _ done: @escaping StoreCompletion<Void>) {
        write(done) { contents, _ in
            if contents.users[userID]?.passwordHash == old { contents.users[userID]?.passwordHash = new }
        }
    }

    func hasPasswordHash(prefix: String, _ done: @escaping StoreCompletion<Bool>) {
        read(done) { contents in contents.users.values.contains { $0.passwordHash.hasPrefix(prefix) } }
    }

    func deleteUser(id: Int64, _ done: @escaping StoreCompletion<Void>) {
        write(done) { contents, changes throws(StoreError) in
            guard contents.users.removeValue(forKey: id) != nil else { throw .notFound }
            contents.sessions = contents.sessions.filter { $0.value.userID != id }
            changes.append(.deleteUser(id))
        }
    }

    // MARK: Sessions

    func createSession(
        id: String, userID: Int64, refreshHash: [UInt8], now: Int64, expiresAt: Int64, guard sessionGuard: SessionGuard,
        _ done: @escaping StoreCompletion<[String]>
    ) {
        runHook("createSession")
        let answer: StoreCompletion<[String]> = { [heldSessionAnswers] result in
            let parked = heldSessionAnswers.withLock { held -> Bool in
                guard held != nil else { return false }
                held?.append { done(result) }
                return true
            }
            if !parked { done(result) }
        }
        write(answer) { contents, changes throws(StoreError) in
            if let expected = sessionGuard.credentialGeneration {
                guard let user = contents.users[userID], user.active, user.credentialGeneration == expected else {
                    throw .credentialsChanged
                }
            }
            guard contents.users[userID] != nil else { throw .notFound }
            var evicted: [String] = []
            if sessionGuard.maximumSessions < .max {
                let live = contents.sessions.filter {
                    $0.value.userID == userID && $0.value.revokedAt == nil && $0.value.expiresAt > now
                }
                .sorted {
                    ($0.value.lastUsedAt, $0.value.createdAt, $0.key) < (
                        $1.value.lastUsedAt, $1.value.createdAt, $1.key
                    )
                }
                if live.count >= sessionGuard.maximumSessions {
                    for (old, _) in live.prefix(live.count - sessionGuard.maximumSessions + 1) {
                        contents.sessions[old]?.revokedAt = now
                        changes.append(.removeSession(id: old))
                        evicted.append(old)
                    }
                }
            }
            contents.sessions[id] = Session(
                userID: userID, createdAt: now, lastUsedAt: now, expiresAt: expiresAt, tokenHash: refreshHash,
                tokenIssuedAt: now, tokenExpiresAt: expiresAt)
            changes.append(.addSession(id: id, SessionSnapshot(userID: userID, expiresAt: expiresAt)))
            return evicted
        }
    }

    /// What `RefreshRotation` decides from: the presented token (if it is
    /// the session's current one), the session, its user, the current
    /// token's issue time, and the grace kept for the presented token.
    private static func refreshState(_ contents: Contents, sessionID: String, presented: [UInt8]) -> (
        RefreshRotation.TokenState?, RefreshRotation.SessionState?, UserSnapshot?, Int64?, RefreshRotation.GraceState?
    ) {
        guard let session = contents.sessions[sessionID], let user = contents.users[session.userID] else {
            return (nil, nil, nil, nil, nil)
        }
        let current = session.tokenHash == presented
        let token = current ? RefreshRotation.TokenState(spent: false, expiresAt: session.tokenExpiresAt) : nil
        let state = RefreshRotation.SessionState(
            revoked: session.revokedAt != nil, expiresAt: session.expiresAt, userActive: user.active)
        var grace: RefreshRotation.GraceState?
        if !current, let kept = session.grace, kept.spentHash == presented {
            grace = .init(
                spentAt: kept.spentAt, keptUntil: kept.keptUntil, replays: kept.replays,
                successorIsCurrent: kept.nextHash == session.tokenHash)
        }
        return (token, state, user.snapshot, current ? nil : session.tokenIssuedAt, grace)
    }

    func rotateRefreshToken(
        sessionID: String, presented: [UInt8], presentedIssuedAt: Int64?, next: [UInt8], now: Int64,
        expiresAt: Int64, grace: RefreshGrace?, _ done: @escaping StoreCompletion<RotationOutcome>
    ) {
        write(done) { contents, changes in
            let (token, session, user, current, kept) = Self.refreshState(
                contents, sessionID: sessionID, presented: presented)
            switch RefreshRotation.decide(
                token: token, session: session, now: now, presentedIssuedAt: presentedIssuedAt,
                currentIssuedAt: current, grace: kept, graceWindow: grace?.window ?? 0)
            {
            case .invalid(let why):
                return .invalid(why)
            case .reuse:
                contents.sessions[sessionID]?.revokedAt = now
                changes.append(.removeSession(id: sessionID))
                return .reused(userID: user!.id)
            case .replay:
                contents.sessions[sessionID]!.grace!.replays += 1
                return .replayed(
                    user!, sealedNext: contents.sessions[sessionID]!.grace!.sealedNext, expiresAt: session!.expiresAt)
            case .rotate:
                contents.sessions[sessionID]!.tokenHash = next
                contents.sessions[sessionID]!.tokenIssuedAt = now
                contents.sessions[sessionID]!.tokenExpiresAt = expiresAt
                contents.sessions[sessionID]!.lastUsedAt = now
                contents.sessions[sessionID]!.expiresAt = expiresAt
                if let grace {
                    contents.sessions[sessionID]!.grace = Grace(
                        spentHash: presented, nextHash: next, spentAt: now, keptUntil: now + grace.window, replays: 0,
                        sealedNext: grace.sealedNext)
                }
                changes.append(.extendSession(id: sessionID, expiresAt: expiresAt))
                return .rotated(user!)
            }
        }
    }

    func logout(
        sessionID: String, presented: [UInt8], presentedIssuedAt: Int64?, graceWindow: Int64, now: Int64,
        _ done: @escaping StoreCompletion<LogoutOutcome>
    ) {
        write(done) { contents, changes in
            let (token, session, user, current, kept) = Self.refreshState(
                contents, sessionID: sessionID, presented: presented)
            switch RefreshRotation.decideLogout(
                token: token, session: session, now: now, presentedIssuedAt: presentedIssuedAt,
                currentIssuedAt: current, grace: kept, graceWindow: graceWindow)
            {
            case .invalid(let why):
                return .invalid(why)
            case .reuse:
                Self.revoke(&contents, &changes, sessionID, now: now)
                return .reused(userID: user!.id)
            case .revoke:
                Self.revoke(&contents, &changes, sessionID, now: now)
                return .revoked(userID: user!.id)
            }
        }
    }

    func sweepRefreshGrace(now: Int64, _ done: @escaping StoreCompletion<Int>) {
        write(done) { contents, _ in
            var count = 0
            for (id, session) in contents.sessions where session.grace.map({ $0.keptUntil <= now }) ?? false {
                contents.sessions[id]!.grace = nil
                count += 1
            }
            return count
        }
    }

    @discardableResult
    private static func revoke(
        _ contents: inout Contents, _ changes: inout [LiveView.Change], _ id: String, now: Int64
    ) -> Bool {
        changes.append(.removeSession(id: id))
        guard contents.sessions[id] != nil, contents.sessions[id]!.revokedAt == nil else { return false }
        contents.sessions[id]!.revokedAt = now
        return true
    }

    @discardableResult
    private static func revokeSessions(
        _ contents: inout Contents, _ changes: inout [LiveView.Change], userID: Int64, keeping: String?, now: Int64
    ) -> Int {
        var count = 0
        for (id, session) in contents.sessions
        where session.userID == userID && session.revokedAt == nil && session.expiresAt > now && id != keeping {
            contents.sessions[id]!.revokedAt = now
            count += 1
        }
        for (id, session) in contents.sessions where session.userID == userID { contents.sessions[id]!.grace = nil }
        changes.append(.removeSessions(userID: userID, keeping: keeping))
        return count
    }

    func revokeSession(id: String, reason: String, now: Int64, _ done: @escaping StoreCompletion<Bool>) {
        write(done) { contents, changes in Self.revoke(&contents, &changes, id, now: now) }
    }

    func sessionExists(id: String, _ done: @escaping StoreCompletion<Bool>) {
        read(done) { $0.sessions[id] != nil }
    }

    func revokeSessions(
        userID: Int64, keeping: String?, reason: String, now: Int64, _ done: @escaping StoreCompletion<Int>
    ) {
        write(done) { contents, changes in
            Self.revokeSessions(&contents, &changes, userID: userID, keeping: keeping, now: now)
        }
    }

    func liveSessions(userID: Int64, now: Int64, _ done: @escaping StoreCompletion<[SessionRecord]>) {
        read(done) { contents in
            contents.sessions.filter {
                $0.value.userID == userID && $0.value.revokedAt == nil && $0.value.expiresAt > now
            }
            .sorted { ($1.value.createdAt, $0.key) < ($0.value.createdAt, $1.key) }
            .map {
                SessionRecord(
                    id: $0.key, userID: userID, createdAt: $0.value.createdAt, lastUsedAt: $0.value.lastUsedAt,
                    expiresAt: $0.value.expiresAt, revokedAt: nil)
            }
        }
    }

    // MARK: Login failure counters

    func loadFailureCounters() throws(StoreError) -> [String: LoginThrottle.Counter] {
        contents.withLock { $0.counters }
    }

    func saveFailureCounters(
        _ current: @escaping @Sendable () -> [LoginThrottle.Change], _ done: @escaping StoreCompletion<Void>
    ) {
        write(done) { contents, _ in
            for change in current() { contents.counters[change.key] = change.counter }
        }
    }

    // MARK: Second factor

    func secondFactor(userID: Int64, _ done: @escaping StoreCompletion<SecondFactorRecord?>) {
        read(done) { $0.factors[userID] }
    }

    func beginSecondFactor(userID: Int64, sealedSecret: [UInt8], now: Int64, _ done: @escaping StoreCompletion<Bool>) {
        write(done) { contents, _ throws(StoreError) in
            guard contents.users[userID] != nil else { throw .notFound }
            if contents.factors[userID]?.confirmed == true { return false }
            contents.factors[userID] = SecondFactorRecord(sealedSecret: sealedSecret, confirmed: false, lastStep: nil)
            return true
        }
    }

    func confirmSecondFactor(
        userID: Int64, sealedSecret: [UInt8], step: Int64, recoveryCodeHashes: [[UInt8]], now: Int64,
        _ done: @escaping StoreCompletion<Bool>
    ) {
        write(done) { contents, _ in
            guard let factor = contents.factors[userID], !factor.confirmed, factor.sealedSecret == sealedSecret
            else { return false }
            contents.factors[userID] = SecondFactorRecord(sealedSecret: sealedSecret, confirmed: true, lastStep: step)
            contents.users[userID]?.mfaEnabled = true
            contents.users[userID]?.credentialGeneration += 1
            contents.recoveryCodes[userID] = Set(recoveryCodeHashes)
            return true
        }
    }

    func acceptSecondFactorStep(
        userID: Int64, sealedSecret: [UInt8], step: Int64, _ done: @escaping StoreCompletion<Bool>
    ) {
        write(done) { contents, _ in
            guard let factor = contents.factors[userID], factor.confirmed, factor.sealedSecret == sealedSecret,
                (factor.lastStep ?? .min) < step
            else {
                return false
            }
            contents.factors[userID]!.lastStep = step
            return true
        }
    }

    func spendRecoveryCode(userID: Int64, hash: [UInt8], _ done: @escaping StoreCompletion<Bool>) {
        write(done) { contents, _ in contents.recoveryCodes[userID]?.remove(hash) != nil }
    }

    func replaceRecoveryCodes(userID: Int64, hashes: [[UInt8]], _ done: @escaping StoreCompletion<Bool>) {
        write(done) { contents, _ in
            guard contents.factors[userID]?.confirmed == true else { return false }
            contents.recoveryCodes[userID] = Set(hashes)
            return true
        }
    }

    func removeSecondFactor(userID: Int64, now: Int64, _ done: @escaping StoreCompletion<Bool>) {
        write(done) { contents, _ in
            let removed = contents.factors.removeValue(forKey: userID) != nil
            contents.users[userID]?.mfaEnabled = false
            contents.recoveryCodes[userID] = nil
            contents.challenges = contents.challenges.filter { $0.value.userID != userID }
            return removed
        }
    }

    func createMFAChallenge(tokenHash: [UInt8], _ challenge: MFAChallenge, _ done: @escaping StoreCompletion<Void>) {
        write(done) { contents, _ in contents.challenges[tokenHash] = challenge }
    }

    func mfaChallenge(tokenHash: [UInt8], now: Int64, _ done: @escaping StoreCompletion<MFAChallenge?>) {
        read(done) { contents in contents.challenges[tokenHash].flatMap { $0.expiresAt > now ? $0 : nil } }
    }

    func spendMFAChallenge(tokenHash: [UInt8], now: Int64, _ done: @escaping StoreCompletion<Bool>) {
        write(done) { contents, _ in
            guard let challenge = contents.challenges[tokenHash], challenge.expiresAt > now else { return false }
            contents.challenges[tokenHash] = nil
            return true
        }
    }
}
