import AuthCore
import AuthCrypto
import Testing

@Suite struct EdDSATests {
    // RFC 8037 appendix A.1, A.3 and A.4.
    let seed = Base64URL.decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")!
    let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    let signingInput = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    let signature = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"

    @Test func rfc8037TestVectorThroughSignerAndVerifier() throws {
        let key = try Ed25519PrivateKey(seed: seed)
        #expect(Base64URL.encode(key.publicKey.bytes) == x)
        #expect(key.publicKey.thumbprint == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
        #expect(Base64URL.encode(key.sign(Array(signingInput.utf8))) == signature)
        let input = Array(signingInput.utf8)
        let valid = input.withUnsafeBytes {
            key.publicKey.isValidSignature(Base64URL.decode(signature)!, for: $0)
        }
        #expect(valid)
        var tampered = Base64URL.decode(signature)!
        tampered[10] ^= 1
        #expect(!input.withUnsafeBytes { key.publicKey.isValidSignature(tampered, for: $0) })
    }

    @Test func pemRoundTrip() throws {
        let key = try Ed25519PrivateKey(seed: seed)
        let pem = try key.pem()
        #expect(String(decoding: pem, as: UTF8.self).hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(try Ed25519PrivateKey.fromPEM(pem).seed == seed)
        #expect(throws: Ed25519PrivateKey.Failure.self) { try Ed25519PrivateKey.fromPEM(Array("garbage".utf8)) }
    }

    let policy = TokenPolicy(issuer: "authd", audience: "authd-clients", leeway: 30)

    var claims: JSONObject {
        AccessClaims(
            userID: 1, email: "a@example.com", role: "user", sessionID: "s", tokenID: "j", issuedAt: 1000,
            expiresAt: 1900
        ).jsonObject(policy: policy)
    }

    @Test func edDSATokensSignVerifyAndCarryTheJWK() throws {
        let key = SigningKey(ed25519: try Ed25519PrivateKey(seed: seed))
        #expect(key.algorithm == .eddsa)
        #expect(key.kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
        let token = JWSCodec.sign(claims: claims, kind: .access, key: key)
        let header = try JSONParser.parse(Base64URL.decode(String(token.split(separator: ".")[0]))!)
        #expect(header.objectValue?["alg"] == .string("EdDSA"))
        _ = try JWSCodec.verify(token, kind: .access, keys: KeySet(current: key))
        #expect(
            key.publicJWK
                == .object([
                    "kty": .string("OKP"), "crv": .string("Ed25519"), "x": .string(x), "kid": .string(key.kid),
                    "alg": .string("EdDSA"), "use": .string("sig"),
                ]))
    }

    @Test func verificationIsPinnedToTheConfiguredAlgorithm() throws {
        let key = SigningKey(ed25519: try Ed25519PrivateKey(seed: seed))
        let keys = KeySet(current: key)
        // The classic confusion: HS256 with the public key as the HMAC secret.
        let input =
            Base64URL.encode(Array(#"{"alg":"HS256","typ":"at+jwt","kid":"\#(key.kid)"}"#.utf8)) + "."
            + Base64URL.encode(JSONWriter.encode(.object(claims)))
        let forged = input + "." + Base64URL.encode(HMACKey(bytes: Array(x.utf8)).authenticate(Array(input.utf8)))
        #expect(throws: TokenFailure.badHeader("alg")) { try JWSCodec.verify(forged, kind: .access, keys: keys) }
        let rawForged =
            input + "."
            + Base64URL.encode(HMACKey(bytes: Base64URL.decode(x)!).authenticate(Array(input.utf8)))
        #expect(throws: TokenFailure.badHeader("alg")) { try JWSCodec.verify(rawForged, kind: .access, keys: keys) }
        // And an EdDSA token is refused where HS256 is configured.
        let edToken = JWSCodec.sign(claims: claims, kind: .access, key: key)
        let hsKeys = KeySet(current: SigningKey(secret: Array("an-hs256-secret-of-at-least-32-bytes!".utf8)))
        #expect(throws: TokenFailure.badHeader("alg")) { try JWSCodec.verify(edToken, kind: .access, keys: hsKeys) }
        // Other algorithms too.
        for alg in ["none", "ES256", "RS256", "HS512", "Ed25519"] {
            let other =
                Base64URL.encode(Array(#"{"alg":"\#(alg)","typ":"at+jwt","kid":"\#(key.kid)"}"#.utf8)) + "."
                + Base64URL.encode(JSONWriter.encode(.object(claims))) + "." + signature
            #expect(throws: TokenFailure.badHeader("alg")) { try JWSCodec.verify(other, kind: .access, keys: keys) }
        }
    }

    @Test func aKeySetNeverMixesAlgorithms() throws {
        let ed = SigningKey(ed25519: try Ed25519PrivateKey.generate())
        let hs = SigningKey(secret: Array("an-hs256-secret-of-at-least-32-bytes!".utf8))
        let keys = KeySet(current: ed, older: [hs])
        #expect(keys.key(for: hs.kid) == nil)
        #expect(keys.all.count == 1)
    }
}
