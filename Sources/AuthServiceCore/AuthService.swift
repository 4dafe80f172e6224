import AuthCore
import AuthCrypto
import Dispatch

/// Answers a request: called exactly once, on any thread.
public typealias Responder = @Sendable (Result<JSONValue, AuthError>) -> Void

/// The methods of protocol v1, with no I/O of its own: it talks to the
/// world through the ports it owns (`CredentialStore`, `JobQueue`,
/// `KeyProvider`, `SecurityEventSink`, `OperationsLog`, `ServiceClock`),
/// which the daemon composes and tests replace. Cheap methods (token checks,
/// health) answer inline on the caller's thread; store calls run on the
/// store queue and password hashing on the hash queue, each bounded and
/// fair between peers, so a verify never waits behind a hash.
public final class AuthService: @unchecked Sendable {
    let store: any CredentialStore
    let keys: any KeyProvider
    let events: any SecurityEventSink
    let log: any OperationsLog
    let hashQueue: any JobQueue
    let storeQueue: any JobQueue
    let gate: LoginGate
    let stats = MethodStats()
    /// Ed25519 checks cost ~50 µs: tokens whose signature was verified are
    /// remembered (never their expiry, user or session checks).
    let verifiedTokens = VerifiedTokenCache(capacity: 10_000)
    /// `sys.backup`'s writer; nil on a store with no local state to copy.
    let backups: (any StateBackupWriter)?
    let clock: @Sendable () -> Int64
    let microseconds: @Sendable () -> Int64
    let startedAt: Int64

    private let lock = ServiceLock()
    private var currentSettings: Settings
    private var adminGIDs: Set<UInt32>
    /// The unmatchable hashes a login checks besides (or instead of) the
    /// account's, at the configured parameters.
    private var hashingForLogins: LoginHashing
    /// The schemes stored hashes are in, as last counted; nil until then
    /// (a login then pads with every scheme).
    private var storedSchemes: Set<PasswordHashing.Scheme>?
    private var countingSchemes = false
    private var refreshLimiter: RefreshRateLimiter
    /// Seals the successors kept for the refresh grace window; required
    /// while `refresh_grace` > 0.
    private let sealingKey: KeyEncryptionKey?
    private var shuttingDownFlag = false
    private var inFlightCount = 0
    /// Entered by every request until it is answered (shutdown waits on it).
    private let unanswered = DispatchGroup()
    private var answeredCount = 0
    /// Places for sessions being written after their login's hash: a worker
    /// goes on to its next hash while its last login's session is written,
    /// and waits only when as many are still being written as there are
    /// workers (a stalled database then holds logins as it did when each
    /// worker waited for its own).
    let sessionWrites: DispatchSemaphore

    /// The service receives its queues and login gate; it builds neither.
    public init(
        settings: Settings, adminGIDs: Set<UInt32>, store: any CredentialStore, keys: any KeyProvider,
        events: any SecurityEventSink, log: any OperationsLog, hashQueue: any JobQueue, storeQueue: any JobQueue,
        gate: LoginGate, clock: ServiceClock, sealingKey: KeyEncryptionKey? = nil,
        backups: (any StateBackupWriter)? = nil
    ) throws {
        try Self.checkSealingKey(sealingKey, for: settings)
        self.sealingKey = sealingKey
        self.backups = backups
        self.currentSettings = settings
        self.adminGIDs = adminGIDs
        self.store = store
        self.keys = keys
        self.events = events
        self.log = log
        self.hashQueue = hashQueue
        self.sessionWrites = DispatchSemaphore(value: max(1, settings.workers))
        self.storeQueue = storeQueue
        self.gate = gate
        self.clock = clock.now
        self.microseconds = clock.microseconds
        self.startedAt = clock.now()
        self.refreshLimiter = RefreshRateLimiter(limit: settings.refreshRateLimit)
        self.hashingForLogins = try LoginHashing(hashing: settings.passwordHashing)
    }

    public var settings: Settings { lock.withLock { currentSettings } }

    /// The keys were reloaded: forget which tokens' signatures were checked.
    public func keysChanged() { verifiedTokens.removeAll() }
    var isShuttingDown: Bool { lock.withLock { shuttingDownFlag } }
    public var inFlight: Int { lock.withLock { inFlightCount } }
    /// Requests answered since start (for the `STATUS=` line's jobs/s).
    public var answered: Int { lock.withLock { answeredCount } }

    /// Applies reloadable settings (SIGHUP). Pool sizes stay as started.
    public func apply(settings: Settings, adminGIDs: Set<UInt32>) throws {
        let hashing = try LoginHashing(hashing: settings.passwordHashing)
        try lock.withLock {
            try Self.checkSealingKey(sealingKey, for: settings)
            // Hashes of the scheme configured until now may have been written
            // since the last count: padded with until the next count says.
            storedSchemes?.insert(currentSettings.passwordScheme)
            currentSettings = settings
            self.adminGIDs = adminGIDs
            hashingForLogins = hashing
            refreshLimiter.limit = settings.refreshRateLimit
        }
        gate.updateLimits(settings.throttleLimits)
        hashQueue.updatePerPeerCapacity(settings.effectiveMaxQueuePerPeer)
        storeQueue.updatePerPeerCapacity(settings.effectiveMaxQueuePerPeer)
    }

    /// A grace window keeps successors sealed: no window without a key.
    private static func checkSealingKey(_ key: KeyEncryptionKey?, for settings: Settings) throws {
        if settings.refreshGrace > 0, key == nil {
            throw SettingsError("refresh_grace needs a key-encryption key to seal the successors it keeps")
        }
    }

    /// The settings and the key secrets are sealed with (a refresh's kept
    /// successor, a TOTP secret).
    var refreshSealing: (Settings, KeyEncryptionKey?) { lock.withLock { (currentSettings, sealingKey) } }
    var sealingKeyNow: KeyEncryptionKey? { lock.withLock { sealingKey } }

    public func beginShutdown() { lock.withLock { shuttingDownFlag = true } }

    /// Waits (without polling) until every request taken has been answered,
    /// at most `timeout` seconds; false when some still are not.
    public func waitUntilIdle(timeout: Double) -> Bool {
        unanswered.wait(timeout: .now() + timeout) == .success
    }

    /// Lets the queues finish what they hold; bounded by `timeout` seconds.
    public func drainQueues(timeout: Double) {
        hashQueue.drainAndStop(timeout: timeout)
        storeQueue.drainAndStop(timeout: timeout)
    }

    /// What a login hashes, and the schemes stored hashes are in.
    var loginHashing: (LoginHashing, Set<PasswordHashing.Scheme>?) {
        lock.withLock { (hashingForLogins, storedSchemes) }
    }

    /// Counts which schemes stored password hashes are in (the daemon calls
    /// it after start and after each sweep), so that logins pad their time
    /// with exactly those. A scheme found stays counted until the next
    /// count; a failed count leaves the last one.
    public func countStoredPasswordSchemes(_ done: @escaping @Sendable () -> Void = {}) {
        // One count at a time: an older one must not land after a newer.
        let started = lock.withLock { () -> Bool in
            if countingSchemes { return false }
            countingSchemes = true
            return true
        }
        guard started else { return done() }
        let found = Locked<Set<PasswordHashing.Scheme>>([])
        let remaining = Locked(PasswordHashing.Scheme.allCases.count)
        let failed = Locked(false)
        for scheme in PasswordHashing.Scheme.allCases {
            store.hasPasswordHash(prefix: scheme.hashPrefix) { [self] result in
                switch result {
                case .success(true): found.withLock { _ = $0.insert(scheme) }
                case .success(false): break
                case .failure(let error):
                    failed.withLock { $0 = true }
                    log.log(.warning, "could not count password hash schemes", metadata: ["cause": "\(error)"])
                }
                guard
                    remaining.withLock({
                        $0 -= 1; return $0
                    }) == 0
                else { return }
                let schemes = failed.withLock { $0 } ? nil : found.withLock { $0 }
                lock.withLock {
                    if let schemes { storedSchemes = schemes }
                    countingSchemes = false
                }
                done()
            }
        }
    }

    func admitRefresh(sessionID: String) -> RefreshRateLimiter.Decision {
        let now = clock()
        return lock.withLock { refreshLimiter.admit(sessionID: sessionID, now: now) }
    }

    // MARK: Dispatch

    /// Handles one request; `respond` is called once, possibly on another
    /// thread. `isGone` tells whether the requester has gone away (its
    /// connection closed): queued jobs are then dropped before they start.
    public func handle(
        _ request: RPCRequest, peer: PeerCredentials, isGone: @escaping @Sendable () -> Bool = { false },
        respond: @escaping Responder
    ) {
        let started = microseconds()
        unanswered.enter()
        lock.withLock { inFlightCount += 1 }
        let method = RPCMethod(name: request.method)
        let ending = CallEnding()
        // The answer's closure holds the method's name, not the request.
        let methodName = request.method
        let finish: Responder = { [self] result in
            var failure: AuthError.Reason?
            if case .failure(let error) = result {
                failure = error.reason
                if error.reason == .internalError {
                    log.log(
                        .error, "internal error",
                        metadata: ["method": "\(methodName)", "cause": error.logDetail ?? ""])
                }
            }
            stats.record(
                method: method?.rawValue ?? "(unknown)", microseconds: Int(microseconds() - started),
                failure: failure)
            // Hand the answer to the connection first: its write is then queued
            // on the event loop before shutdown can see nothing in flight and
            // queue the close behind it.
            respond(result)
            let endings = lock.withLock {
                inFlightCount -= 1
                answeredCount += 1
                defer { ending.actions = [] }
                return ending.actions
            }
            unanswered.leave()
            for action in endings { action() }
        }
        if isShuttingDown && !(method?.isServedWhileStopping ?? false) {
            finish(.failure(.shuttingDown))
            return
        }
        guard let method else {
            finish(.failure(.methodNotFound))
            return
        }
        let context = CallContext(peer: peer, params: request.params, isGone: isGone, respond: finish, ending: ending)
        // Authorisation before any param is looked at, their shape included.
        if method.requiresAdmin {
            guard isAuthorizedAdmin(context) else {
                event(.authzFail, "Admin method refused", peer, reason: "forbidden")
                finish(.failure(.forbidden))
                return
            }
        }
        if method.requiresRoot, peer.uid != 0 {
            event(.authzFail, "Root-only method refused", peer, reason: "forbidden")
            finish(.failure(.forbidden))
            return
        }
        guard request.paramsAreObject else {
            finish(.failure(RPCRequest.paramsMustBeAnObject))
            return
        }
        do throws(AuthError) {
            switch method {
            case .login: login(context)
            case .refresh: refresh(context)
            case .logout: logout(context)
            case .logoutAll: logoutAll(context)
            case .mfa: mfa(context)
            case .verify: verify(context)
            case .me: me(context)
            case .changePassword: changePassword(context)
            case .enrollSecondFactor: enrollSecondFactor(context)
            case .confirmSecondFactor: confirmSecondFactor(context)
            case .disableSecondFactor: disableSecondFactor(context)
            case .replaceRecoveryCodes: replaceRecoveryCodes(context)
            case .jwks: jwks(context)
            case .health: health(context)
            case .discover: context.respond(.success(AuthService.openRPCDocument))
            case .createUser: try createUser(context)
            case .getUser: try getUser(context)
            case .listUsers: try listUsers(context)
            case .updateUser: try updateUser(context)
            case .setPassword: try setPassword(context)
            case .deleteUser: try deleteUser(context)
            case .listSessions: try listSessions(context)
            case .revokeSessions: try revokeSessions(context)
            case .rotateKeys: try rotateKeys(context)
            case .resetSecondFactor: try resetSecondFactor(context)
            case .stats: statsResult(context)
            case .backup: backup(context)
            case .metrics: metrics(context)
            }
        } catch {
            context.fail(error)
        }
    }

    /// One call in progress: who asked, with what, and where the answer goes.
    struct CallContext: Sendable {
        let peer: PeerCredentials
        let params: JSONObject
        let isGone: @Sendable () -> Bool
        let respond: Responder
        /// Runs after the answer: frees the places of the call's jobs.
        let ending: CallEnding

        func fail(_ error: AuthError) { respond(.failure(error)) }

        /// Answers with `body`'s value after a store call succeeded, or
        /// with the store's failure.
        func answer<Value>(_ result: Result<Value, StoreError>, _ body: (Value) throws(AuthError) -> JSONValue) {
            switch result {
            case .failure(let error):
                fail(AuthService.map(error))
            case .success(let value):
                do throws(AuthError) {
                    respond(.success(try body(value)))
                } catch {
                    fail(error)
                }
            }
        }

        /// Goes on with a store call's value; its failure answers the call.
        func then<Value>(_ result: Result<Value, StoreError>, _ next: (Value) -> Void) {
            switch result {
            case .failure(let error): fail(AuthService.map(error))
            case .success(let value): next(value)
            }
        }
    }

    /// `rpc.discover`'s answer: the document parsed once, written from its
    /// own bytes' encoding every time.
    static let openRPCDocument: JSONValue = {
        guard case .object(let document)? = try? JSONParser.parse(Array(OpenRPCDocument.text.utf8)) else {
            preconditionFailure("the embedded OpenRPC document is not a JSON object")
        }
        return .object(document.withEncoding())
    }()

    // MARK: Helpers

    /// Waits on this thread for a store call's completion. Hashing jobs use
    /// it for the lookup before their hash and the write after it, so the
    /// hash runs on the job's own worker: a networked store completes on
    /// threads of its own, and a hash there would escape the worker pool's
    /// bound (and hold up the store's other calls). SQLite completes before
    /// the call returns, so nothing waits.
    func waitFor<Value: Sendable>(_ call: (@escaping StoreCompletion<Value>) -> Void) -> Result<Value, StoreError> {
        let outcome = Locked<Result<Value, StoreError>?>(nil)
        let completed = DispatchSemaphore(value: 0)
        call { result in
            outcome.withLock { $0 = result }
            completed.signal()
        }
        completed.wait()
        return outcome.withLock { $0! }
    }

    /// Runs `job` on the store queue, under the peer's uid: `job` makes the
    /// store calls and answers the call from their completions. It must
    /// not block: on a store whose calls do not block, it may start on the
    /// caller's thread or on the one that answered another call.
    func onStoreQueue(_ context: CallContext, _ job: @escaping @Sendable () -> Void) {
        submit(to: storeQueue, context, job)
    }

    /// Queues `job` for the context's peer; `dropped` runs instead when the
    /// requester has gone before it starts, and also when the queue refuses
    /// it (then the answer is `busy`). Either way the call is answered once.
    func submit(
        to queue: any JobQueue, _ context: CallContext, dropped: @escaping @Sendable () -> Void = {},
        _ job: @escaping @Sendable () -> Void
    ) {
        var run = job
        if queue.holdsPlaceUntilAnswered {
            run = { [self] in
                lock.withLock { context.ending.actions.append { queue.jobAnswered() } }
                job()
            }
        }
        let request = QueuedJob(
            peer: context.peer.uid, isAbandoned: context.isGone, run: run,
            dropped: {
                dropped()
                context.fail(.busy(retryAfter: 1))
            })
        if case .failure = queue.submit(request) {
            dropped()
            context.fail(.busy(retryAfter: queue.retryAfterEstimate))
        }
    }

    /// The protocol's answer to a store failure. `credentialsChanged` is
    /// handled by the callers that expect it; anywhere else it is a bug.
    static func map(_ error: StoreError) -> AuthError {
        switch error {
        case .emailTaken: return .emailTaken
        case .notFound: return .notFound
        case .credentialsChanged: return .internalError("unexpected credentials_changed")
        case .failed(let cause): return .internalError(cause)
        case .unavailable: return .unavailable()
        }
    }

    /// A new hash of `password` in `hashing`'s scheme (the configuration
    /// the password was checked under), or the answer to give when hashing
    /// failed (a library failure: internal).
    func newPasswordHash(_ password: String, with hashing: PasswordHashing) -> Result<String, AuthError> {
        do {
            return .success(try hashing.hash(Array(password.utf8)))
        } catch {
            return .failure(.internalError("\(hashing.scheme.rawValue): \(error)"))
        }
    }

    func record(_ event: SecurityEvent) { events.record(event) }

    func event(
        _ name: SecurityEvent.Name, _ message: String, _ peer: PeerCredentials, client: String? = nil,
        userID: Int64? = nil, email: String? = nil, reason: String? = nil
    ) {
        events.record(
            SecurityEvent(
                name, message, peerUID: peer.uid, peerPID: peer.pid, client: client, userID: userID, email: email,
                reason: reason))
    }

    struct Authenticated {
        let claims: AccessClaims
        let claimsObject: JSONObject
        let user: UserSnapshot
    }

    /// Checks an access token, then that its user exists and is active and
    /// its session live, in the contract's order. Failures are logged.
    func authenticate(_ token: String, peer: PeerCredentials) throws(AuthError) -> Authenticated {
        let now = clock()
        // The two settings a cached token's check reads, not a copy of all.
        var (policy, maxStaleness) = lock.withLock { (currentSettings.tokenPolicy, currentSettings.maxStaleness) }
        let verified: VerifiedAccessToken
        do {
            // A token checked before skips its signature check, its claims'
            // parse and every check but the times (with either algorithm:
            // the cache's lookup, allocation-free, costs less than an HMAC
            // and a parse) and the keys' lock. A miss carries the cache's
            // count from before the keys are read: a reload between the two
            // makes the insert a no-op.
            let (cached, generation) = verifiedTokens.lookup(token)
            if let cached, cached.checked.wereChecked(under: policy) {
                try cached.checked.times.check(now: now, leeway: policy.leeway)
                verified = cached
            } else {
                // A full check reads all the settings, and the staleness
                // bound from the same copy (a reload may have come between).
                let settings = self.settings
                maxStaleness = settings.maxStaleness
                verified = try checkAccessToken(token, settings: settings, now: now)
                verifiedTokens.insert(token, verified, generation: generation)
            }
        } catch {
            event(.tokenInvalid, "Access token refused", peer, reason: error.logReason)
            throw error.accessError
        }
        let claims = verified.checked.claims
        // Fail closed: a daemon cut off from a shared database for longer
        // than max_staleness may be missing revocations made elsewhere.
        if let age = store.secondsSinceSync, age > Double(maxStaleness) {
            throw .unavailable()
        }
        let (user, session) = store.view.lookup(userID: claims.userID, sessionID: claims.sessionID)
        guard let user else {
            event(
                .tokenInvalid, "Access token for a deleted user", peer, userID: claims.userID, reason: "user_not_found")
            throw .userNotFound
        }
        guard user.active else {
            event(
                .tokenInvalid, "Access token for an inactive account", peer, userID: user.id, reason: "account_inactive"
            )
            throw .accountInactive
        }
        guard let session, session.userID == user.id, session.expiresAt > now else {
            event(.tokenInvalid, "Access token of a revoked session", peer, userID: user.id, reason: "session_revoked")
            throw .sessionRevoked
        }
        return Authenticated(claims: claims, claimsObject: verified.claimsObject, user: user)
    }

    /// The signature and claims of an access token, checked in full; the
    /// claims' encoding is made here, once per cached token.
    private func checkAccessToken(_ token: String, settings: Settings, now: Int64) throws(TokenFailure)
        -> VerifiedAccessToken
    {
        let claimsObject = try JWSCodec.verify(
            token, kind: .access, keys: keys.accessKeys, maximumBytes: settings.tokenPolicy.maximumTokenBytes)
        let checked = try ClaimsValidator.checkedAccess(claimsObject, policy: settings.tokenPolicy, now: now)
        return VerifiedAccessToken(claimsObject: claimsObject.withEncoding(), checked: checked)
    }

    /// Whether the peer's credentials alone make it an admin: uid 0, a
    /// configured admin uid, or a member of a configured admin group.
    public func isAdminPeer(_ peer: PeerCredentials) -> Bool {
        let (uids, gids) = lock.withLock { (currentSettings.adminUIDs, adminGIDs) }
        return peer.uid == 0 || uids.contains(peer.uid) || gids.contains(peer.gid)
            || peer.groups.contains(where: gids.contains)
    }

    /// A connection was turned away by a connection limit.
    public func connectionRefused(_ peer: PeerCredentials) {
        event(.authzFail, "Connection refused: connection limit reached", peer, reason: "connection_limit")
    }

    /// Admin methods: uid 0, a configured admin uid or group, or an admin
    /// user's `access_token` (the only param read before authorisation).
    func isAuthorizedAdmin(_ context: CallContext) -> Bool {
        if isAdminPeer(context.peer) { return true }
        guard case .string(let raw)? = context.params["access_token"], let token = BearerToken.strip(raw),
            let authenticated = try? authenticate(token, peer: context.peer)
        else { return false }
        return authenticated.user.role == "admin"
    }
}
