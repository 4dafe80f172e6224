import AuthCrypto

/// Compact JWS, strictly: exactly three base64url parts without padding, a
/// header whose `alg` is pinned to the key set's algorithm (HS256 or EdDSA),
/// whose `typ` matches the kind expected and whose `kid` names a known key,
/// no `crit`, and a signature checked in constant time (HMAC) or by Ed25519.
/// Claims are checked by `ClaimsValidator`.
public enum JWSCodec {
    /// Signs `claims` with `key`, header `{"alg":…,"typ":…,"kid":…}`.
    public static func sign(claims: JSONObject, kind: TokenKind, key: SigningKey) -> String {
        var header = JSONWriter(capacity: 64)
        header.appendASCII("{\"alg\":")
        header.writeString(key.algorithm.rawValue)
        header.appendASCII(",\"typ\":")
        header.writeString(kind.typ)
        header.appendASCII(",\"kid\":")
        header.writeString(key.kid)
        header.appendASCII("}")
        var signingInput = Base64URL.encodeToBytes(header.bytes)
        signingInput.append(UInt8(ascii: "."))
        signingInput.append(contentsOf: Base64URL.encodeToBytes(JSONWriter.encode(.object(claims))))
        let signature = signingInput.withUnsafeBytes { key.sign($0) }
        signingInput.append(UInt8(ascii: "."))
        signingInput.append(contentsOf: Base64URL.encodeToBytes(signature))
        return String(decoding: signingInput, as: UTF8.self)
    }

    /// Checks structure, header and signature and returns the claims.
    public static func verify(
        _ token: String, kind: TokenKind, keys: KeySet, maximumBytes: Int = 8192
    ) throws(TokenFailure) -> JSONObject {
        var token = token
        let result = token.withUTF8 { utf8 -> Result<JSONObject, TokenFailure> in
            do throws(TokenFailure) {
                return .success(
                    try verify(
                        bytes: UnsafeRawBufferPointer(utf8), kind: kind, keys: keys, maximumBytes: maximumBytes))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    static func verify(
        bytes: UnsafeRawBufferPointer, kind: TokenKind, keys: KeySet, maximumBytes: Int
    ) throws(TokenFailure) -> JSONObject {
        guard bytes.count <= maximumBytes else { throw .malformed("too long") }
        guard let firstDot = bytes.firstIndex(of: UInt8(ascii: ".")) else { throw .malformed("no dots") }
        guard let secondDot = bytes[(firstDot + 1)...].firstIndex(of: UInt8(ascii: ".")) else {
            throw .malformed("one dot")
        }
        if bytes[(secondDot + 1)...].contains(UInt8(ascii: ".")) { throw .malformed("too many parts") }

        guard let headerBytes = Base64URL.decode(raw: UnsafeRawBufferPointer(rebasing: bytes[..<firstDot])) else {
            throw .malformed("header encoding")
        }
        guard case .object(let header)? = try? JSONParser.parse(headerBytes, maximumDepth: 4) else {
            throw .badHeader("not a JSON object")
        }
        guard case .string(let alg)? = header["alg"], alg.utf8.elementsEqual(keys.algorithm.rawValue.utf8) else {
            throw .badHeader("alg")
        }
        guard header["typ"] == .string(kind.typ) else { throw .badHeader("typ") }
        guard header["crit"] == nil else { throw .badHeader("crit") }
        guard case .string(let kid)? = header["kid"] else { throw .badHeader("kid missing") }
        guard let key = keys.key(for: kid) else { throw .unknownKey }

        guard let signature = Base64URL.decode(raw: UnsafeRawBufferPointer(rebasing: bytes[(secondDot + 1)...])),
            signature.count == key.signatureLength
        else {
            throw .badSignature
        }
        guard key.isValid(signature: signature, for: UnsafeRawBufferPointer(rebasing: bytes[..<secondDot])) else {
            throw .badSignature
        }

        guard let payload = Base64URL.decode(raw: UnsafeRawBufferPointer(rebasing: bytes[(firstDot + 1)..<secondDot]))
        else {
            throw .malformed("payload encoding")
        }
        guard case .object(let claims)? = try? JSONParser.parse(payload, maximumDepth: 8) else {
            throw .badClaims("not a JSON object")
        }
        return claims
    }
}
