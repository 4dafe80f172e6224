import AuthCore

/// The signing keys (the daemon's `KeyStore` keeps them in the state
/// directory). Reads are cheap and return the current sets.
public protocol KeyProvider: AnyObject, Sendable {
    /// Signs and verifies access tokens: the current key and those retained.
    var accessKeys: KeySet { get }
    /// Signs and verifies refresh tokens.
    var refreshKeys: KeySet { get }
    /// Starts a new access key, keeping the old ones for `retention`
    /// seconds; returns the new key's id.
    func rotate(now: Int64, retention: Int64) throws -> String
    /// The public keys for `keys.jwks` (none for HMAC).
    func publicJWKs(now: Int64, retention: Int64) -> [JSONValue]
}
