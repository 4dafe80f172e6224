import AuthCore

/// A rotation under a grace window (`refresh_grace` > 0): how long the
/// spent token may be presented again, and the next token sealed under the
/// key-encryption key, which the store keeps for the window only so that a
/// replay answers with the same successor (RFC 9700 4.14.2). The store
/// never sees the successor in the clear: only its hash, as for every
/// refresh token, and this box.
public struct RefreshGrace: Sendable, Equatable {
    /// Seconds (`refresh_grace`).
    public var window: Int64
    /// The next refresh token, sealed (`sealingContext`).
    public var sealedNext: [UInt8]

    public init(window: Int64, sealedNext: [UInt8]) {
        self.window = window
        self.sealedNext = sealedNext
    }

    /// The associated data a successor is sealed under: it opens only for
    /// the session and the spent token it was stored for, so a box moved
    /// to another row does not open.
    public static func sealingContext(sessionID: String, spentHash: [UInt8]) -> [UInt8] {
        Array("authd refresh grace v1\u{0}".utf8) + Array(sessionID.utf8) + [0] + spentHash
    }
}
