import AuthCore

/// Delivers a store call's outcome. It may run on the calling thread before
/// the call returns (SQLite) or later on another thread (a networked store),
/// always on a thread where blocking work is allowed, and exactly once.
public typealias StoreCompletion<Value> = @Sendable (Result<Value, StoreError>) -> Void

/// The service's store: users, sessions with their current refresh token,
/// and login failure counters. Every call that touches storage completes
/// through a `StoreCompletion`, so a store may be asynchronous. Token checks
/// read `view` synchronously; a store feeds it, in commit order, the changes
/// of every write it commits.
///
/// The store conformance suite (`StoreConformance` in the tests) is the
/// contract's executable form: every implementation must pass it.
public protocol CredentialStore: AnyObject, Sendable {
    /// Users and live sessions in memory, for checks that must not wait.
    var view: LiveView { get }

    /// Seconds since `view` was last known to match the store; nil for a
    /// store whose view is current by construction (SQLite: this daemon is
    /// its only writer). A store shared by several daemons reports how
    /// long ago it last caught up with the others' changes, and the service
    /// stops trusting the view past `max_staleness`. Infinite when the store
    /// knows the view lacks a change it committed.
    var secondsSinceSync: Double? { get }

    // MARK: Users

    /// Creates a user; `emailTaken` when the (normalised) email exists.
    func createUser(
        email: String, passwordHash: String, role: String, active: Bool, now: Int64,
        _ done: @escaping StoreCompletion<UserRecord>)
    func user(id: Int64, _ done: @escaping StoreCompletion<UserRecord?>)
    func user(email: String, _ done: @escaping StoreCompletion<UserRecord?>)
    /// Up to `limit` users with ids above `after`, by id.
    func listUsers(after: Int64, limit: Int, _ done: @escaping StoreCompletion<[UserRecord]>)
    /// Changes what is given. Deactivating revokes every session and moves
    /// the credential generation; `notFound`, `emailTaken`.
    func updateUser(
        id: Int64, role: String?, active: Bool?, email: String?, now: Int64,
        _ done: @escaping StoreCompletion<UserRecord>)
    /// Sets a new hash and moves the credential generation; revokes every
    /// session but `keepingSession`; returns how many. With
    /// `expectedGeneration`, only if the generation is still that one
    /// (else `credentialsChanged`).
    func setPasswordHash(
        userID: Int64, hash: String, keepingSession: String?, expectedGeneration: Int64?, now: Int64,
        _ done: @escaping StoreCompletion<Int>)
    /// Replaces `old` by `new` (a cost raise) only if the hash is still
    /// `old`; the credential generation stays.
    func upgradePasswordHash(userID: Int64, from old: String, to new: String, _ done: @escaping StoreCompletion<Void>)
    /// Deletes a user with its sessions; `notFound`.
    func deleteUser(id: Int64, _ done: @escaping StoreCompletion<Void>)
    /// Whether any user's password hash starts with `prefix`: which schemes
    /// stored hashes are still in. Stops at the first match; without one,
    /// it reads every user.
    func hasPasswordHash(prefix: String, _ done: @escaping StoreCompletion<Bool>)

    // MARK: Sessions

    /// Opens a session with its first refresh token (its hash), holding
    /// `guard` at commit; returns the ids of sessions revoked to stay under
    /// the session limit. `credentialsChanged` when the guard fails.
    func createSession(
        id: String, userID: Int64, refreshHash: [UInt8], now: Int64, expiresAt: Int64, guard: SessionGuard,
        _ done: @escaping StoreCompletion<[String]>)
    /// Spends the current refresh token `presented` for `next`, or revokes
    /// the session on reuse (`RefreshRotation` decides). With `grace`, the
    /// spent token's hash, the time, the window's end, `next`'s hash and its
    /// sealed box are kept (replacing the session's previous ones) so that
    /// presenting it again within the window is a replay; without, nothing
    /// is kept and the session's previous grace no longer applies (its
    /// successor is no longer current). Revoking a user's sessions (a
    /// password change keeping one among them) deletes their grace.
    func rotateRefreshToken(
        sessionID: String, presented: [UInt8], presentedIssuedAt: Int64?, next: [UInt8], now: Int64,
        expiresAt: Int64, grace: RefreshGrace?, _ done: @escaping StoreCompletion<RotationOutcome>)
    /// Revokes the session of a presented refresh token. A token spent
    /// within `graceWindow` seconds (and graceable) logs out, not reuse.
    func logout(
        sessionID: String, presented: [UInt8], presentedIssuedAt: Int64?, graceWindow: Int64, now: Int64,
        _ done: @escaping StoreCompletion<LogoutOutcome>)
    /// Deletes the kept successors whose window (the one in force when
    /// their token was spent) has ended; returns how many.
    func sweepRefreshGrace(now: Int64, _ done: @escaping StoreCompletion<Int>)
    /// Revokes one session; false when there is no such live session.
    func revokeSession(id: String, reason: String, now: Int64, _ done: @escaping StoreCompletion<Bool>)
    /// Whether a session with this id exists at all (live or not).
    func sessionExists(id: String, _ done: @escaping StoreCompletion<Bool>)
    /// Revokes a user's live sessions but `keeping`; returns how many.
    func revokeSessions(
        userID: Int64, keeping: String?, reason: String, now: Int64, _ done: @escaping StoreCompletion<Int>)
    /// A user's live sessions (not revoked, not expired), newest first.
    func liveSessions(userID: Int64, now: Int64, _ done: @escaping StoreCompletion<[SessionRecord]>)

    // MARK: Second factor (TOTP)

    /// The user's second factor, confirmed or not; nil when there is none.
    func secondFactor(userID: Int64, _ done: @escaping StoreCompletion<SecondFactorRecord?>)
    /// Stores a new, unconfirmed secret, replacing an unconfirmed one; false
    /// (nothing changed) when a confirmed one exists. `notFound`.
    func beginSecondFactor(userID: Int64, sealedSecret: [UInt8], now: Int64, _ done: @escaping StoreCompletion<Bool>)
    /// Confirms the unconfirmed secret that is still `sealedSecret` (a
    /// compare-and-swap: an enrolment started again since wins), with
    /// `step` as its last accepted step, stores the recovery codes' hashes
    /// in place of any, and moves the credential generation (a login whose
    /// password was checked before, without the factor, opens no session);
    /// false when it is not there to confirm.
    func confirmSecondFactor(
        userID: Int64, sealedSecret: [UInt8], step: Int64, recoveryCodeHashes: [[UInt8]], now: Int64,
        _ done: @escaping StoreCompletion<Bool>)
    /// Records `step` as the last accepted step of the confirmed factor
    /// whose secret is still `sealedSecret` (the one the code was checked
    /// against), only if it is after the recorded one (atomically: of two
    /// daemons accepting one code, one wins); false when refused.
    func acceptSecondFactorStep(
        userID: Int64, sealedSecret: [UInt8], step: Int64, _ done: @escaping StoreCompletion<Bool>)
    /// Spends one recovery code by its hash; false when it is not one of
    /// the user's (or was spent: of two at once, one wins).
    func spendRecoveryCode(userID: Int64, hash: [UInt8], _ done: @escaping StoreCompletion<Bool>)
    /// Replaces the user's recovery codes; false when no confirmed factor.
    func replaceRecoveryCodes(userID: Int64, hashes: [[UInt8]], _ done: @escaping StoreCompletion<Bool>)
    /// Removes the second factor with its recovery codes and open
    /// challenges; false when there was none.
    func removeSecondFactor(userID: Int64, now: Int64, _ done: @escaping StoreCompletion<Bool>)
    /// Stores a challenge under its token's hash.
    func createMFAChallenge(tokenHash: [UInt8], _ challenge: MFAChallenge, _ done: @escaping StoreCompletion<Void>)
    /// The challenge of a token's hash, unexpired at `now`; nil otherwise.
    func mfaChallenge(tokenHash: [UInt8], now: Int64, _ done: @escaping StoreCompletion<MFAChallenge?>)
    /// Spends a challenge (deletes it); false when it was not there (spent
    /// by another request, or expired): of two at once, one wins.
    func spendMFAChallenge(tokenHash: [UInt8], now: Int64, _ done: @escaping StoreCompletion<Bool>)

    // MARK: Login failure counters

    /// Every stored counter (read once, when the service starts).
    func loadFailureCounters() throws(StoreError) -> [String: LoginThrottle.Counter]
    /// Stores the counters of the changed keys. `current` is called inside
    /// the store's serialised write and returns the latest values, so an
    /// older value can never be left behind a newer one.
    func saveFailureCounters(
        _ current: @escaping @Sendable () -> [LoginThrottle.Change], _ done: @escaping StoreCompletion<Void>)

    // MARK: Login limits shared by several daemons

    /// Whether other daemons share this store's failure counters. Then a
    /// login attempt also reserves its place in the store
    /// (`reserveLoginAttempt`), so failures spread over daemons add up and
    /// concurrent attempts on several daemons cannot pass a limit together.
    var sharesLoginLimits: Bool { get }
    /// Decides, on the shared counters and the live reservations of both
    /// keys, as `LoginThrottle.decision` does; on `proceed`, holds a place
    /// for `holdFor` seconds (a daemon that dies mid-hash holds nothing for
    /// longer).
    func reserveLoginAttempt(
        account: String, client: String, limits: LoginThrottle.Limits, now: Int64, holdFor: Int64,
        _ done: @escaping StoreCompletion<LoginReservation>)
    /// Ends a reservation: a failure counts against both keys, a success
    /// clears the account's count. Returns both keys' counters afterwards.
    func finishLoginAttempt(
        _ reservation: Int64, account: String, client: String, outcome: LoginThrottle.Outcome,
        limits: LoginThrottle.Limits, now: Int64, _ done: @escaping StoreCompletion<[String: LoginThrottle.Counter]>)
}

extension CredentialStore {
    public var secondsSinceSync: Double? { nil }

    /// A store with one daemon: the daemon's throttle is the whole truth.
    public var sharesLoginLimits: Bool { false }

    public func reserveLoginAttempt(
        account: String, client: String, limits: LoginThrottle.Limits, now: Int64, holdFor: Int64,
        _ done: @escaping StoreCompletion<LoginReservation>
    ) {
        done(.failure(.failed("this store does not share login limits")))
    }

    public func finishLoginAttempt(
        _ reservation: Int64, account: String, client: String, outcome: LoginThrottle.Outcome,
        limits: LoginThrottle.Limits, now: Int64, _ done: @escaping StoreCompletion<[String: LoginThrottle.Counter]>
    ) {
        done(.failure(.failed("this store does not share login limits")))
    }
}
