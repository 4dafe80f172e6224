/// The access-token signing algorithms authd offers, by their JWS `alg`.
public enum SigningAlgorithm: String, CaseIterable, Sendable {
    /// HMAC-SHA256 with a shared secret (the default).
    case hs256 = "HS256"
    /// Ed25519: verifiable offline with the JWKS.
    case eddsa = "EdDSA"
}
