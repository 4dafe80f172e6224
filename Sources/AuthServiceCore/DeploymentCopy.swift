/// What moving a single-host deployment onto a shared store carries
/// (`authd migrate --from-sqlite`): every user with its hash and role, the
/// live sessions with their current refresh token's hash, and the failure
/// counters. Signing keys travel separately (`StoredSigningKey`).
public struct DeploymentCopy: Sendable {
    /// A live session and its one current refresh token.
    public struct Session: Sendable {
        public var id: String
        public var userID: Int64
        public var createdAt: Int64
        public var lastUsedAt: Int64
        public var expiresAt: Int64
        public var refreshHash: [UInt8]
        public var refreshIssuedAt: Int64
        public var refreshExpiresAt: Int64

        public init(
            id: String, userID: Int64, createdAt: Int64, lastUsedAt: Int64, expiresAt: Int64, refreshHash: [UInt8],
            refreshIssuedAt: Int64, refreshExpiresAt: Int64
        ) {
            self.id = id
            self.userID = userID
            self.createdAt = createdAt
            self.lastUsedAt = lastUsedAt
            self.expiresAt = expiresAt
            self.refreshHash = refreshHash
            self.refreshIssuedAt = refreshIssuedAt
            self.refreshExpiresAt = refreshExpiresAt
        }
    }

    public struct FailureCounter: Sendable {
        public var key: String
        public var failures: Int
        public var windowStart: Int64

        public init(key: String, failures: Int, windowStart: Int64) {
            self.key = key
            self.failures = failures
            self.windowStart = windowStart
        }
    }

    public var users: [UserRecord] = []
    /// The id the next new user gets: ids of deleted users are not reused
    /// (SQLite's AUTOINCREMENT), since other systems may know them by `sub`.
    public var nextUserID: Int64 = 1
    public var sessions: [Session] = []
    public var failureCounters: [FailureCounter] = []
    /// Second factors (enrolled, confirmed or not), their secrets sealed
    /// under the source's key-encryption key until the move reseals them.
    public var secondFactors: [SecondFactor] = []

    /// A user's second factor with its recovery codes' hashes.
    public struct SecondFactor: Sendable {
        public var userID: Int64
        public var record: SecondFactorRecord
        public var recoveryCodeHashes: [[UInt8]]

        public init(userID: Int64, record: SecondFactorRecord, recoveryCodeHashes: [[UInt8]]) {
            self.userID = userID
            self.record = record
            self.recoveryCodeHashes = recoveryCodeHashes
        }
    }

    public init() {}
}
