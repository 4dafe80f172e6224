import AuthCore
import AuthCrypto
import Testing

@Suite struct JWSCodecTests {
    let accessKey = SigningKey(secret: Array("access-secret-for-tests-0123456789abcdef".utf8))
    let refreshKey = SigningKey(secret: Array("refresh-secret-for-tests-0123456789abcdef".utf8))
    let policy = TokenPolicy(issuer: "authd", audience: "authd-clients", leeway: 30)
    let now: Int64 = 1_800_000_000

    var claims: JSONObject {
        AccessClaims(
            userID: 42, email: "a@example.com", role: "user", sessionID: "sid1", tokenID: "jti1", issuedAt: now,
            expiresAt: now + 900
        ).jsonObject(policy: policy)
    }

    func forge(header: String, payload: JSONObject, key: [UInt8]? = nil) -> String {
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(JSONWriter.encode(.object(payload)))
        let signature = HMACKey(bytes: key ?? accessKey.hmac.bytes).authenticate(Array(input.utf8))
        return input + "." + Base64URL.encode(signature)
    }

    func verify(_ token: String) throws(TokenFailure) -> AccessClaims {
        let object = try JWSCodec.verify(token, kind: .access, keys: KeySet(current: accessKey))
        return try ClaimsValidator.access(object, policy: policy, now: now)
    }

    /// RFC 7515 appendix A.1: the HMAC over the example's signing input with
    /// the example's key gives the example's signature.
    @Test func rfc7515AppendixA1() throws {
        let key = try #require(
            Base64URL.decode(
                "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"))
        let signingInput =
            "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        let signature = HMACKey(bytes: key).authenticate(Array(signingInput.utf8))
        #expect(Base64URL.encode(signature) == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        // The example has neither kid nor an at+jwt typ: authd refuses it as an access token.
        let token = signingInput + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        #expect(throws: TokenFailure.self) {
            try JWSCodec.verify(token, kind: .access, keys: KeySet(current: SigningKey(secret: key)))
        }
    }

    @Test func signsAndVerifies() throws {
        let token = JWSCodec.sign(claims: claims, kind: .access, key: accessKey)
        let verified = try verify(token)
        #expect(verified.userID == 42)
        #expect(verified.sessionID == "sid1")
        #expect(verified.expiresAt == now + 900)
        let header = try JSONParser.parse(Base64URL.decode(String(token.split(separator: ".")[0]))!)
        #expect(header == .object(["alg": .string("HS256"), "typ": .string("at+jwt"), "kid": .string(accessKey.kid)]))
    }

    @Test func hmacMatchesAFreshKeyObjectAcrossThreadsAndReuse() async {
        let message = Array("message".utf8)
        let expected = HMACKey(bytes: Array("k".utf8)).authenticate(message)
        await withTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<50).map { _ in HMACKey(bytes: Array("k".utf8)).authenticate(message) }.last! }
            }
            for await result in group { #expect(result == expected) }
        }
    }

    // MARK: RFC 8725 section 2 attacks

    @Test func algNoneIsRefused() {
        let unsigned =
            Base64URL.encode(Array(#"{"alg":"none","typ":"at+jwt","kid":"\#(accessKey.kid)"}"#.utf8)) + "."
            + Base64URL.encode(JSONWriter.encode(.object(claims))) + "."
        #expect(throws: TokenFailure.badHeader("alg")) { try verify(unsigned) }
        let withSignature = forge(header: #"{"alg":"none","typ":"at+jwt","kid":"\#(accessKey.kid)"}"#, payload: claims)
        #expect(throws: TokenFailure.badHeader("alg")) { try verify(withSignature) }
    }

    @Test(arguments: ["HS384", "HS512", "RS256", "ES256", "EdDSA", "hs256", "PS256"])
    func otherAlgorithmsAreRefused(_ alg: String) {
        let token = forge(header: #"{"alg":"\#(alg)","typ":"at+jwt","kid":"\#(accessKey.kid)"}"#, payload: claims)
        #expect(throws: TokenFailure.badHeader("alg")) { try verify(token) }
    }

    @Test func refreshTokenIsNeverAnAccessToken() {
        let refresh = JWSCodec.sign(claims: claims, kind: .refresh, key: refreshKey)
        #expect(throws: TokenFailure.self) { try verify(refresh) }
        // Even signed with the access key, the refresh typ is refused.
        let confused = JWSCodec.sign(claims: claims, kind: .refresh, key: accessKey)
        #expect(throws: TokenFailure.badHeader("typ")) { try verify(confused) }
        // And an access token is not a refresh token.
        let access = JWSCodec.sign(claims: claims, kind: .access, key: accessKey)
        #expect(throws: TokenFailure.self) {
            try JWSCodec.verify(access, kind: .refresh, keys: KeySet(current: refreshKey))
        }
    }

    @Test func keyConfusionWithTheOtherKeyIsRefused() {
        // Right header and kid, but signed with the refresh secret.
        let token = forge(
            header: #"{"alg":"HS256","typ":"at+jwt","kid":"\#(accessKey.kid)"}"#, payload: claims,
            key: refreshKey.hmac.bytes)
        #expect(throws: TokenFailure.badSignature) { try verify(token) }
    }

    @Test func tamperingIsDetected() throws {
        let token = JWSCodec.sign(claims: claims, kind: .access, key: accessKey)
        let parts = token.split(separator: ".").map(String.init)
        var elevated = claims
        elevated["role"] = .string("admin")
        let tamperedPayload = parts[0] + "." + Base64URL.encode(JSONWriter.encode(.object(elevated))) + "." + parts[2]
        #expect(throws: TokenFailure.badSignature) { try verify(tamperedPayload) }
        var signature = Base64URL.decode(parts[2])!
        signature[0] ^= 1
        #expect(throws: TokenFailure.badSignature) {
            try verify(parts[0] + "." + parts[1] + "." + Base64URL.encode(signature))
        }
        #expect(throws: TokenFailure.badSignature) { try verify(parts[0] + "." + parts[1] + ".") }
    }

    @Test func unknownOrMissingKidIsRefused() {
        let unknown = forge(header: #"{"alg":"HS256","typ":"at+jwt","kid":"nope"}"#, payload: claims)
        #expect(throws: TokenFailure.unknownKey) { try verify(unknown) }
        let missing = forge(header: #"{"alg":"HS256","typ":"at+jwt"}"#, payload: claims)
        #expect(throws: TokenFailure.badHeader("kid missing")) { try verify(missing) }
    }

    @Test func missingOrWrongTypIsRefused() {
        let missing = forge(header: #"{"alg":"HS256","kid":"\#(accessKey.kid)"}"#, payload: claims)
        #expect(throws: TokenFailure.badHeader("typ")) { try verify(missing) }
        let jwt = forge(header: #"{"alg":"HS256","typ":"JWT","kid":"\#(accessKey.kid)"}"#, payload: claims)
        #expect(throws: TokenFailure.badHeader("typ")) { try verify(jwt) }
    }

    @Test func critHeaderIsRefused() {
        let token = forge(
            header: #"{"alg":"HS256","typ":"at+jwt","kid":"\#(accessKey.kid)","crit":["exp"]}"#, payload: claims)
        #expect(throws: TokenFailure.badHeader("crit")) { try verify(token) }
    }

    @Test func missingExpIsRefused() {
        var noExp = claims
        noExp["exp"] = nil
        let token = forge(header: #"{"alg":"HS256","typ":"at+jwt","kid":"\#(accessKey.kid)"}"#, payload: noExp)
        #expect(throws: TokenFailure.badClaims("exp missing")) { try verify(token) }
    }

    @Test func wrongIssuerOrAudienceIsRefused() {
        for (claim, value) in [("iss", JSONValue.string("evil")), ("aud", .string("other")), ("aud", .null)] {
            var bad = claims
            bad[claim] = value
            let token = forge(header: #"{"alg":"HS256","typ":"at+jwt","kid":"\#(accessKey.kid)"}"#, payload: bad)
            #expect(throws: TokenFailure.badClaims(claim)) { try verify(token) }
        }
        var audList = claims
        audList["aud"] = .array([.string("x"), .string("authd-clients")])
        let listed = forge(header: #"{"alg":"HS256","typ":"at+jwt","kid":"\#(accessKey.kid)"}"#, payload: audList)
        #expect((try? verify(listed)) != nil)
    }

    @Test func oversizedTokensAreRefusedBeforeDecoding() {
        var big = claims
        big["pad"] = .string(String(repeating: "x", count: 9000))
        let token = JWSCodec.sign(claims: big, kind: .access, key: accessKey)
        #expect(throws: TokenFailure.malformed("too long")) { try verify(token) }
    }

    @Test(arguments: ["", "a", "a.b", "a.b.c.d", "....", "eyJ.eyJ.", "!!.!!.!!"])
    func malformedTokensAreRefused(_ token: String) {
        #expect(throws: TokenFailure.self) { try verify(token) }
    }

    @Test func paddedSegmentsAreRefused() {
        let token = JWSCodec.sign(claims: claims, kind: .access, key: accessKey)
        let parts = token.split(separator: ".").map(String.init)
        #expect(throws: TokenFailure.self) { try verify(parts[0] + "=." + parts[1] + "." + parts[2]) }
    }

    // MARK: Time claims

    @Test func expiryHonoursTheLeeway() throws {
        let token = JWSCodec.sign(claims: claims, kind: .access, key: accessKey)
        let object = try JWSCodec.verify(token, kind: .access, keys: KeySet(current: accessKey))
        _ = try ClaimsValidator.access(object, policy: policy, now: now + 900 + 29)
        #expect(throws: TokenFailure.expired) {
            try ClaimsValidator.access(object, policy: policy, now: now + 900 + 30)
        }
        var strict = policy
        strict.leeway = 0
        #expect(throws: TokenFailure.expired) { try ClaimsValidator.access(object, policy: strict, now: now + 900) }
    }

    /// A key holder can sign any Int64; no claim may make the arithmetic trap.
    @Test(arguments: [Int64.max, Int64.max - 1, Int64.max - 29, Int64.min, Int64.min + 1])
    func extremeTimesNeverOverflow(_ time: Int64) throws {
        for field in ["exp", "iat", "nbf"] {
            var payload = claims
            payload[field] = .int(time)
            let token = forge(header: #"{"alg":"HS256","typ":"at+jwt","kid":"\#(accessKey.kid)"}"#, payload: payload)
            _ = try? verify(token)
        }
        var farFuture = claims
        farFuture["exp"] = .int(Int64.max)
        let token = forge(header: #"{"alg":"HS256","typ":"at+jwt","kid":"\#(accessKey.kid)"}"#, payload: farFuture)
        #expect(try verify(token).expiresAt == Int64.max)
    }

    @Test(arguments: ["", "s p", "s\u{212A}", String(repeating: "a", count: 65), "a/b"])
    func sessionIDsMustBeBase64URL(_ sid: String) {
        var payload = claims
        payload["sid"] = .string(sid)
        let token = forge(header: #"{"alg":"HS256","typ":"at+jwt","kid":"\#(accessKey.kid)"}"#, payload: payload)
        #expect(throws: TokenFailure.self) { try verify(token) }
    }

    @Test func issuerIsComparedByBytes() {
        // U+212A KELVIN SIGN is canonically equivalent to "K".
        let kelvinPolicy = TokenPolicy(issuer: "K", audience: "authd-clients", leeway: 30)
        var payload = claims
        payload["iss"] = .string("\u{212A}")
        let object = payload
        #expect(throws: TokenFailure.self) { try ClaimsValidator.access(object, policy: kelvinPolicy, now: now) }
    }

    @Test func futureIatAndNbfAreRefused() {
        var future = claims
        future["iat"] = .int(now + 31)
        #expect(throws: TokenFailure.badClaims("iat in the future")) {
            try ClaimsValidator.access(future, policy: policy, now: now)
        }
        var notYet = claims
        notYet["nbf"] = .int(now + 100)
        #expect(throws: TokenFailure.badClaims("not yet valid")) {
            try ClaimsValidator.access(notYet, policy: policy, now: now)
        }
    }

    @Test func errorsMapToTheProtocolReasons() {
        #expect(TokenFailure.expired.accessError == .tokenExpired)
        #expect(TokenFailure.badSignature.accessError == .tokenInvalid)
        #expect(TokenFailure.unknownKey.accessError == .tokenInvalid)
    }

    @Test func olderKeysVerifyWhileTheCurrentOneSigns() throws {
        let old = SigningKey(secret: Array("an-older-access-secret-0123456789abcdef".utf8))
        let token = JWSCodec.sign(claims: claims, kind: .access, key: old)
        let keys = KeySet(current: accessKey, older: [old])
        #expect(keys.current.kid == accessKey.kid)
        _ = try JWSCodec.verify(token, kind: .access, keys: keys)
        #expect(throws: TokenFailure.unknownKey) {
            try JWSCodec.verify(token, kind: .access, keys: KeySet(current: accessKey))
        }
    }

    @Test func kidIsStableAndDistinct() {
        #expect(SigningKey(secret: Array("x".utf8)).kid == SigningKey(secret: Array("x".utf8)).kid)
        #expect(accessKey.kid != refreshKey.kid)
        #expect(!accessKey.kid.isEmpty)
    }
}
