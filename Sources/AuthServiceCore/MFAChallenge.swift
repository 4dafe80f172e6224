/// What a right password leaves for `auth.mfa` when the account has a
/// second factor: the store keeps it under the SHA-256 of its `mfa_token`.
/// It is bound to the user and to the credentials that password was
/// checked against (a change since voids it: the session opens only at
/// that generation), expires, and is spent by the first right code.
public struct MFAChallenge: Sendable, Equatable {
    public var userID: Int64
    public var credentialGeneration: Int64
    public var expiresAt: Int64

    public init(userID: Int64, credentialGeneration: Int64, expiresAt: Int64) {
        self.userID = userID
        self.credentialGeneration = credentialGeneration
        self.expiresAt = expiresAt
    }
}
