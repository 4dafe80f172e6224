/// Every method of protocol v1: the one list that dispatch, the admin/public
/// split, what is served while stopping, stats and the check against
/// `protocol/openrpc.json` all read.
public enum RPCMethod: String, CaseIterable, Sendable {
    case login = "auth.login"
    case refresh = "auth.refresh"
    case logout = "auth.logout"
    case logoutAll = "auth.logout_all"
    /// The second step of a login whose account has a second factor.
    case mfa = "auth.mfa"
    case verify = "token.verify"
    case me = "user.me"
    case changePassword = "user.change_password"
    case enrollSecondFactor = "user.totp.enroll"
    case confirmSecondFactor = "user.totp.confirm"
    case disableSecondFactor = "user.totp.disable"
    case replaceRecoveryCodes = "user.totp.recovery_codes"
    case jwks = "keys.jwks"
    case health = "sys.health"
    /// The OpenRPC document (the specification's service discovery method).
    case discover = "rpc.discover"
    case createUser = "user.create"
    case getUser = "user.get"
    case listUsers = "user.list"
    case updateUser = "user.update"
    case setPassword = "user.set_password"
    case deleteUser = "user.delete"
    case listSessions = "session.list"
    case revokeSessions = "session.revoke"
    case rotateKeys = "keys.rotate"
    case resetSecondFactor = "user.totp.reset"
    case stats = "stats"
    /// `stats` in the Prometheus text format (node_exporter's textfile collector).
    case metrics = "sys.metrics"
    /// An online copy of the database and the key files, into the state
    /// directory's `backups/` (collected by `authctl backup`).
    case backup = "sys.backup"

    /// The method of a request's `method` member: one hash lookup, where
    /// `init(rawValue:)` compares the name with every case in turn.
    public init?(name: String) {
        guard let method = Self.byName[name] else { return nil }
        self = method
    }

    private static let byName = Dictionary(uniqueKeysWithValues: allCases.map { ($0.rawValue, $0) })

    /// Admin methods: uid 0, an admin uid or group, or an admin user's
    /// `access_token`; anyone else gets `403` before any param is looked at.
    public var requiresAdmin: Bool {
        switch self {
        case .createUser, .getUser, .listUsers, .updateUser, .setPassword, .deleteUser, .listSessions,
            .revokeSessions, .rotateKeys, .stats, .resetSecondFactor, .backup, .metrics:
            true
        case .login, .refresh, .logout, .logoutAll, .mfa, .verify, .me, .changePassword, .enrollSecondFactor,
            .confirmSecondFactor, .disableSecondFactor, .replaceRecoveryCodes, .jwks, .health, .discover:
            false
        }
    }

    /// Methods for uid 0 alone, of the admin methods: a backup holds the
    /// keys, and only root can read the state directory to collect it, so no
    /// other admin (an admin uid, an admin user's token) has a use for one.
    public var requiresRoot: Bool { self == .backup }

    /// Read-only methods still answered while the daemon stops.
    public var isServedWhileStopping: Bool {
        switch self {
        case .verify, .health, .jwks, .me, .stats, .metrics, .discover: true
        default: false
        }
    }
}
