/// A user's TOTP second factor as stored: the secret (sealed under the
/// key-encryption key; the store never sees it in the clear), whether it
/// was confirmed (only a confirmed one is asked for at login), and the last
/// time step a code was accepted at (a code of that step or an older one
/// is refused: each code works once).
public struct SecondFactorRecord: Sendable, Equatable {
    public var sealedSecret: [UInt8]
    public var confirmed: Bool
    public var lastStep: Int64?

    public init(sealedSecret: [UInt8], confirmed: Bool, lastStep: Int64?) {
        self.sealedSecret = sealedSecret
        self.confirmed = confirmed
        self.lastStep = lastStep
    }
}

extension SecondFactorRecord {
    /// The associated data a TOTP secret is sealed under: it opens only for
    /// the user it was stored for (ids are kept when a deployment moves).
    public static func sealingContext(userID: Int64) -> [UInt8] {
        Array("authd totp v1\u{0}\(userID)".utf8)
    }
}
