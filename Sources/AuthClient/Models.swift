import AuthJSON

/// A user as login and verification describe it.
public struct AuthUser: Sendable, Equatable {
    public var id: String
    public var email: String
    public var role: String

    public init(id: String, email: String, role: String) {
        self.id = id
        self.email = email
        self.role = role
    }
}

/// A user as `user.me` and the admin methods describe it (never a hash).
public struct UserRecord: Sendable, Equatable {
    public var id: String
    public var email: String
    public var role: String
    public var active: Bool
    /// Unix seconds.
    public var createdAt: Int64
    /// A confirmed TOTP second factor (false from a daemon that predates it).
    public var mfaEnabled: Bool = false
}

/// A new TOTP secret from ``AuthClient/enrollSecondFactor(accessToken:currentPassword:)``:
/// show `uri` as a QR code (or `secret` to type), then confirm a code.
public struct SecondFactorEnrolment: Sendable, Equatable {
    /// Base32, as authenticator apps take it.
    public var secret: String
    /// `otpauth://totp/…`
    public var uri: String
}

/// The answer to a login: both tokens, their lifetimes, and the user.
public struct LoginResult: Sendable, Equatable {
    public var accessToken: String
    public var refreshToken: String
    public var tokenType: String
    /// Seconds until the access token expires.
    public var expiresIn: Int64
    /// Seconds until the refresh token expires.
    public var refreshExpiresIn: Int64
    public var user: AuthUser
}

/// A new access and refresh token pair from `refresh`.
public struct TokenPair: Sendable, Equatable {
    public var accessToken: String
    public var refreshToken: String
    public var expiresIn: Int64
    public var refreshExpiresIn: Int64
}

/// A verified access token: its user as stored now, and its claims.
public struct Verification: Sendable, Equatable {
    public var user: AuthUser
    public var claims: JSONObject
    /// Unix seconds.
    public var expiresAt: Int64
}

/// A live session of a user.
public struct SessionInfo: Sendable, Equatable {
    public var id: String
    public var userID: String
    public var createdAt: Int64
    public var lastUsedAt: Int64
    public var expiresAt: Int64
}

/// `sys.health`.
public struct Health: Sendable, Equatable {
    public var status: String
    public var version: String
    public var uptimeSeconds: Int64
}

/// One page of `user.list`; pass `next` as `after` for the following page.
public struct UserPage: Sendable, Equatable {
    public var users: [UserRecord]
    public var next: String?
}

/// `sys.backup`: a backup the daemon wrote into its state directory, for
/// the caller to collect (`authctl backup` copies it and removes it there).
public struct BackupInfo: Sendable, Equatable {
    /// One file of the backup, relative to ``directory``.
    public struct File: Sendable, Equatable {
        public var path: String
        public var bytes: Int64
        /// Lower-case hex SHA-256 of the file.
        public var sha256: String
    }

    /// Where the daemon wrote it, as the daemon sees its state directory.
    public var directory: String
    /// Unix seconds.
    public var createdAt: Int64
    /// The authd version that wrote it.
    public var version: String
    /// The database and the key files (`MANIFEST.json` beside them lists them).
    public var files: [File]
    /// Keys the daemon was given from outside its state directory (for
    /// example `credential access-key`): not in the backup.
    public var notIncluded: [String]
}

// MARK: Decoding

struct Decoder {
    let object: JSONObject

    init(_ value: JSONValue) throws {
        guard case .object(let object) = value else { throw AuthError.badResponse("result is not an object") }
        self.object = object
    }

    func string(_ key: String) throws -> String {
        guard case .string(let value)? = object[key] else { throw AuthError.badResponse("missing \(key)") }
        return value
    }

    func int(_ key: String) throws -> Int64 {
        guard let value = object[key]?.int64Value else { throw AuthError.badResponse("missing \(key)") }
        return value
    }

    func bool(_ key: String) throws -> Bool {
        guard case .bool(let value)? = object[key] else { throw AuthError.badResponse("missing \(key)") }
        return value
    }

    func nested(_ key: String) throws -> Decoder {
        guard let value = object[key] else { throw AuthError.badResponse("missing \(key)") }
        return try Decoder(value)
    }

    func array(_ key: String) throws -> [JSONValue] {
        guard case .array(let values)? = object[key] else { throw AuthError.badResponse("missing \(key)") }
        return values
    }

    func strings(_ key: String) throws -> [String] {
        try array(key).map { value in
            guard case .string(let text) = value else { throw AuthError.badResponse("\(key) holds a non-string") }
            return text
        }
    }
}

extension AuthUser {
    init(_ d: Decoder) throws {
        self.init(id: try d.string("id"), email: try d.string("email"), role: try d.string("role"))
    }
}

extension UserRecord {
    init(_ d: Decoder) throws {
        self.init(
            id: try d.string("id"), email: try d.string("email"), role: try d.string("role"),
            active: try d.bool("active"), createdAt: try d.int("created_at"),
            mfaEnabled: (try? d.bool("mfa_enabled")) ?? false)
    }
}

extension SessionInfo {
    init(_ d: Decoder) throws {
        self.init(
            id: try d.string("id"), userID: try d.string("user_id"), createdAt: try d.int("created_at"),
            lastUsedAt: try d.int("last_used_at"), expiresAt: try d.int("expires_at"))
    }
}
