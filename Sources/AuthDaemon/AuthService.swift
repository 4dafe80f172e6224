import AuthCore
import AuthCrypto
import AuthStore
import Logging
import NIOConcurrencyHelpers

/// Answers a request: called exactly once, on any thread.
public typealias Responder = @Sendable (Result<JSONValue, AuthError>) -> Void

/// The methods of protocol v1. Cheap methods (token checks, health) answer
/// inline on the caller's thread; database work runs on the store pool and
/// password hashing on the hashing pool, each bounded, so a verify never
/// waits behind a hash.
public final class AuthService: @unchecked Sendable {
    let database: AuthDatabase
    let keys: KeyStore
    let events: SecurityLog
    let hashPool: WorkerPool
    let storePool: WorkerPool
    let gate: LoginGate
    let stats = MethodStats()
    /// Ed25519 checks cost ~50 µs: tokens whose signature was verified are
    /// remembered (never their expiry, user or session checks).
    let verifiedTokens = VerifiedTokenCache(capacity: 10_000)
    let logger: Logger
    let clock: @Sendable () -> Int64
    let startedAt: Int64
    public static let version = "0.1.0"

    private let lock = NIOLock()
    private var currentSettings: Settings
    private var adminGIDs: Set<UInt32>
    /// A bcrypt setting at the configured cost; checking a password against
    /// it costs one full hash and never matches (unknown-email path).
    private var dummyHash: String
    private var shuttingDownFlag = false
    private var inFlightCount = 0
    private var answeredCount = 0

    public init(
        settings: Settings, adminGIDs: Set<UInt32>, database: AuthDatabase, keys: KeyStore, events: SecurityLog,
        logger: Logger, clock: @escaping @Sendable () -> Int64
    ) throws {
        self.currentSettings = settings
        self.adminGIDs = adminGIDs
        self.database = database
        self.keys = keys
        self.events = events
        self.logger = logger
        self.clock = clock
        self.startedAt = clock()
        self.dummyHash = try AuthService.makeDummyHash(cost: settings.bcryptCost)
        self.hashPool = WorkerPool(name: "hash", threads: settings.workers, capacity: settings.maxQueue, niceness: 10)
        self.storePool = WorkerPool(name: "store", threads: 2, capacity: settings.maxQueue, niceness: 0)
        self.gate = try LoginGate(limits: settings.throttleLimits, database: database, clock: clock)
    }

    var settings: Settings { lock.withLock { currentSettings } }
    var isShuttingDown: Bool { lock.withLock { shuttingDownFlag } }
    public var inFlight: Int { lock.withLock { inFlightCount } }
    /// Requests answered since start (for the `STATUS=` line's jobs/s).
    public var answered: Int { lock.withLock { answeredCount } }

    /// Applies reloadable settings (SIGHUP). Pool sizes stay as started.
    public func apply(settings: Settings, adminGIDs: Set<UInt32>) throws {
        let dummy = try AuthService.makeDummyHash(cost: settings.bcryptCost)
        lock.withLock {
            currentSettings = settings
            self.adminGIDs = adminGIDs
            dummyHash = dummy
        }
        gate.updateLimits(settings.throttleLimits)
    }

    public func beginShutdown() { lock.withLock { shuttingDownFlag = true } }

    /// Lets the pools finish what they hold; bounded by `timeout` seconds.
    public func drainPools(timeout: Double) {
        hashPool.drainAndStop(timeout: timeout)
        storePool.drainAndStop(timeout: timeout)
    }

    static func makeDummyHash(cost: Int) throws -> String {
        try Bcrypt.unmatchableSetting(cost: cost)
    }

    var dummyPasswordHash: String { lock.withLock { dummyHash } }

    // MARK: Dispatch

    /// Handles one request; `respond` is called once, possibly on another thread.
    public func handle(_ request: RPCRequest, peer: PeerCredentials, respond: @escaping Responder) {
        let started = DispatchClock.microseconds()
        lock.withLock { inFlightCount += 1 }
        let method = request.method
        let finish: Responder = { [self] result in
            var failed = false
            if case .failure(let error) = result {
                failed = true
                if error.reason == .internalError {
                    logger.error(
                        "internal error", metadata: ["method": "\(method)", "cause": "\(error.logDetail ?? "")"])
                }
            }
            stats.record(
                method: Methods.known.contains(method) ? method : "(unknown)",
                microseconds: DispatchClock.microseconds() - started, failed: failed)
            // Hand the answer to the connection first: its write is then queued
            // on the event loop before shutdown can see nothing in flight and
            // queue the close behind it.
            respond(result)
            lock.withLock {
                inFlightCount -= 1
                answeredCount += 1
            }
        }
        if isShuttingDown && !Methods.alwaysServed.contains(method) {
            finish(.failure(.shuttingDown))
            return
        }
        let context = CallContext(peer: peer, params: request.params, respond: finish)
        switch method {
        case "auth.login": login(context)
        case "auth.refresh": refresh(context)
        case "auth.logout": logout(context)
        case "auth.logout_all": logoutAll(context)
        case "token.verify": verify(context)
        case "user.me": me(context)
        case "user.change_password": changePassword(context)
        case "keys.jwks": jwks(context)
        case "sys.health": health(context)
        case "user.create": admin(context, createUser)
        case "user.get": admin(context, getUser)
        case "user.list": admin(context, listUsers)
        case "user.update": admin(context, updateUser)
        case "user.set_password": admin(context, setPassword)
        case "user.delete": admin(context, deleteUser)
        case "session.list": admin(context, listSessions)
        case "session.revoke": admin(context, revokeSessions)
        case "keys.rotate": admin(context, rotateKeys)
        case "stats": admin(context, statsResult)
        default: finish(.failure(.methodNotFound))
        }
    }

    /// One call in progress: who asked, with what, and where the answer goes.
    struct CallContext: Sendable {
        let peer: PeerCredentials
        let params: JSONObject
        let respond: Responder

        func fail(_ error: AuthError) { respond(.failure(error)) }
    }

    // MARK: Helpers

    /// Runs `body` on a pool; a full queue answers `busy` at once.
    func run(
        on pool: WorkerPool, _ context: CallContext, _ body: @escaping @Sendable () throws -> JSONValue
    ) {
        let accepted = pool.submit { [self] in
            do {
                context.respond(.success(try body()))
            } catch {
                context.respond(.failure(mapError(error)))
            }
        }
        if !accepted { context.fail(.busy(retryAfter: pool.retryAfterEstimate)) }
    }

    func mapError(_ error: any Error) -> AuthError {
        switch error {
        case let error as AuthError: return error
        case StoreError.emailTaken: return .emailTaken
        case StoreError.notFound: return .notFound
        default: return .internalError(String(describing: error))
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
        let settings = self.settings
        let claimsObject: JSONObject
        let claims: AccessClaims
        do {
            let accessKeys = keys.accessKeys
            let cacheable = accessKeys.algorithm == "EdDSA"
            if cacheable, let cached = verifiedTokens.claims(for: token) {
                claimsObject = cached
            } else {
                claimsObject = try JWSCodec.verify(
                    token, kind: .access, keys: accessKeys, maximumBytes: settings.tokenPolicy.maximumTokenBytes)
                if cacheable { verifiedTokens.insert(token, claims: claimsObject) }
            }
            claims = try ClaimsValidator.access(claimsObject, policy: settings.tokenPolicy, now: now)
        } catch {
            event(.tokenInvalid, "Access token refused", peer, reason: error.logReason)
            throw error.accessError
        }
        let (user, session) = database.view.lookup(userID: claims.userID, sessionID: claims.sessionID)
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
        return Authenticated(claims: claims, claimsObject: claimsObject, user: user)
    }

    /// Admin methods: uid 0, a configured admin uid or group, or an admin
    /// user's `access_token`; else `403 forbidden` before any param is read.
    func admin(_ context: CallContext, _ body: (CallContext) throws(AuthError) -> Void) {
        let peer = context.peer
        let (uids, gids) = lock.withLock { (currentSettings.adminUIDs, adminGIDs) }
        var allowed =
            peer.uid == 0 || uids.contains(peer.uid) || gids.contains(peer.gid)
            || peer.groups.contains(where: gids.contains)
        if !allowed, case .string(let token)? = context.params["access_token"] {
            let stripped = token.hasPrefix("Bearer ") ? String(token.dropFirst(7)) : token
            if let authenticated = try? authenticate(stripped, peer: peer), authenticated.user.role == "admin" {
                allowed = true
            }
        }
        guard allowed else {
            event(.authzFail, "Admin method refused", peer, reason: "forbidden")
            context.fail(.forbidden)
            return
        }
        do {
            try body(context)
        } catch {
            context.fail(error)
        }
    }
}

/// The method names this daemon serves, for stats, shutdown and the
/// check against `protocol/openrpc.json`.
public enum Methods {
    public static let known: Set<String> = [
        "auth.login", "auth.refresh", "auth.logout", "auth.logout_all", "token.verify", "user.me",
        "user.change_password", "keys.jwks", "sys.health", "user.create", "user.get", "user.list", "user.update",
        "user.set_password", "user.delete", "session.list", "session.revoke", "keys.rotate", "stats",
    ]
    /// Read-only methods still answered while shutting down.
    public static let alwaysServed: Set<String> = ["token.verify", "sys.health", "keys.jwks", "user.me", "stats"]
}
