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
