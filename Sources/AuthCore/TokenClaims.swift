/// The claims of an access token that authd relies on.
public struct AccessClaims: Sendable, Equatable {
    public var userID: Int64
    public var email: String
    public var role: String
    public var sessionID: String
    public var tokenID: String
    public var issuedAt: Int64
    public var expiresAt: Int64

    public init(
        userID: Int64, email: String, role: String, sessionID: String, tokenID: String, issuedAt: Int64,
        expiresAt: Int64
    ) {
        self.userID = userID
        self.email = email
        self.role = role
        self.sessionID = sessionID
        self.tokenID = tokenID
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }

    public func jsonObject(policy: TokenPolicy) -> JSONObject {
        [
            "iss": .string(policy.issuer), "aud": .string(policy.audience), "sub": .string(String(userID)),
            "email": .string(email), "role": .string(role), "sid": .string(sessionID),
            "jti": .string(tokenID), "iat": .int(issuedAt), "exp": .int(expiresAt),
        ]
    }
}

/// The claims of a refresh token.
public struct RefreshClaims: Sendable, Equatable {
    public var userID: Int64
    public var sessionID: String
    public var tokenID: String
    public var issuedAt: Int64
    public var expiresAt: Int64

    public init(userID: Int64, sessionID: String, tokenID: String, issuedAt: Int64, expiresAt: Int64) {
        self.userID = userID
        self.sessionID = sessionID
        self.tokenID = tokenID
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }

    public func jsonObject(policy: TokenPolicy) -> JSONObject {
        [
            "iss": .string(policy.issuer), "sub": .string(String(userID)), "sid": .string(sessionID),
            "jti": .string(tokenID), "iat": .int(issuedAt), "exp": .int(expiresAt),
        ]
    }
}

/// Checks registered claims against the policy and a given time.
public enum ClaimsValidator {
    public static func access(_ claims: JSONObject, policy: TokenPolicy, now: Int64) throws(TokenFailure)
        -> AccessClaims
    {
        try checkedAccess(claims, policy: policy, now: now).claims
    }

    /// `access`'s checks, with what a later check of the same claims needs:
    /// only their times depend on the moment (`CheckedAccessClaims.check`).
    public static func checkedAccess(_ claims: JSONObject, policy: TokenPolicy, now: Int64) throws(TokenFailure)
        -> CheckedAccessClaims
    {
        let times = try TokenTimes(claims)
        try times.check(now: now, leeway: policy.leeway)
        guard isString(claims["iss"], policy.issuer) else { throw .badClaims("iss") }
        guard audienceMatches(claims["aud"], policy.audience) else { throw .badClaims("aud") }
        guard case .string(let sub)? = claims["sub"], let userID = Int64(sub) else { throw .badClaims("sub") }
        guard case .string(let sid)? = claims["sid"], isSessionID(sid) else { throw .badClaims("sid") }
        guard case .string(let email)? = claims["email"] else { throw .badClaims("email") }
        guard case .string(let role)? = claims["role"] else { throw .badClaims("role") }
        let jti = claims["jti"]?.stringValue ?? ""
        return CheckedAccessClaims(
            claims: AccessClaims(
                userID: userID, email: email, role: role, sessionID: sid, tokenID: jti,
                issuedAt: times.issuedAt ?? 0, expiresAt: times.expiresAt),
            times: times, issuer: policy.issuer, audience: policy.audience)
    }

    public static func refresh(_ claims: JSONObject, policy: TokenPolicy, now: Int64) throws(TokenFailure)
        -> RefreshClaims
    {
        try checkTimes(claims, policy: policy, now: now)
        if let iss = claims["iss"], !isString(iss, policy.issuer) { throw .badClaims("iss") }
        guard case .string(let sub)? = claims["sub"], let userID = Int64(sub) else { throw .badClaims("sub") }
        guard case .string(let sid)? = claims["sid"], isSessionID(sid) else { throw .badClaims("sid") }
        guard case .string(let jti)? = claims["jti"], !jti.isEmpty else { throw .badClaims("jti") }
        return RefreshClaims(
            userID: userID, sessionID: sid, tokenID: jti, issuedAt: seconds(claims["iat"]) ?? 0,
            expiresAt: seconds(claims["exp"])!)
    }

    private static func checkTimes(_ claims: JSONObject, policy: TokenPolicy, now: Int64) throws(TokenFailure) {
        try TokenTimes(claims).check(now: now, leeway: policy.leeway)
    }

    /// Claims are compared by their bytes: `String ==` is canonical
    /// equivalence, under which differently spelled values would match.
    private static func audienceMatches(_ aud: JSONValue?, _ audience: String) -> Bool {
        switch aud {
        case .string(let value)?: return value.utf8.elementsEqual(audience.utf8)
        case .array(let values)?:
            return values.contains { value in
                if case .string(let text) = value { return text.utf8.elementsEqual(audience.utf8) }
                return false
            }
        default: return false
        }
    }

    /// Session ids are base64url (1 to 64 bytes): the view's dictionary is
    /// keyed by `String`, so a non-ASCII spelling must never reach it.
    static func isSessionID(_ sid: String) -> Bool {
        let bytes = sid.utf8
        return (1...64).contains(bytes.count)
            && bytes.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
                    || byte == UInt8(ascii: "-")
            }
    }

    private static func isString(_ value: JSONValue?, _ expected: String) -> Bool {
        guard case .string(let text)? = value else { return false }
        return text.utf8.elementsEqual(expected.utf8)
    }

    /// A NumericDate: an integer, or a decimal number rounded down.
    public static func seconds(_ value: JSONValue?) -> Int64? {
        guard case .number(let text)? = value else { return nil }
        if let int = Int64(text) { return int }
        guard let double = Double(text), double.isFinite, abs(double) < 1e15 else { return nil }
        return Int64(double.rounded(.down))
    }
}

extension Int64 {
    /// `self + other`, clamped to the representable range.
    public func saturatingAdd(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        if !overflow { return sum }
        return other > 0 ? .max : .min
    }
}

/// A token's time claims, read once: `exp` is required; `iat` and `nbf`,
/// when present, must be NumericDates.
public struct TokenTimes: Sendable, Equatable {
    public var expiresAt: Int64
    public var issuedAt: Int64?
    public var notBefore: Int64?

    init(_ claims: JSONObject) throws(TokenFailure) {
        guard let exp = ClaimsValidator.seconds(claims["exp"]) else { throw .badClaims("exp missing") }
        expiresAt = exp
        if let iat = claims["iat"] {
            guard let issued = ClaimsValidator.seconds(iat) else { throw .badClaims("iat") }
            issuedAt = issued
        }
        if let nbf = claims["nbf"] {
            guard let notBefore = ClaimsValidator.seconds(nbf) else { throw .badClaims("nbf") }
            self.notBefore = notBefore
        }
    }

    /// `iat` and `nbf` may not lie in the future beyond the leeway, and
    /// `exp` must not have passed. Claims can hold any Int64 (a key holder
    /// can sign `exp` near `Int64.max`), so no sum here may overflow: the
    /// comparisons saturate.
    public func check(now: Int64, leeway: Int64) throws(TokenFailure) {
        let latestAcceptable = now.saturatingAdd(leeway)
        if let issuedAt, issuedAt > latestAcceptable { throw .badClaims("iat in the future") }
        if let notBefore, notBefore > latestAcceptable { throw .badClaims("not yet valid") }
        if now >= expiresAt.saturatingAdd(leeway) { throw .expired }
    }
}

/// Access claims that passed every check, with the policy they were
/// checked under: a later check of the same token repeats only the time
/// checks, under the same issuer and audience.
public struct CheckedAccessClaims: Sendable {
    public let claims: AccessClaims
    public let times: TokenTimes
    let issuer: String
    let audience: String

    /// Whether these were checked under `policy`'s issuer and audience
    /// (the strings a reload may change), byte for byte.
    public func wereChecked(under policy: TokenPolicy) -> Bool {
        issuer.hasSameUTF8(as: policy.issuer) && audience.hasSameUTF8(as: policy.audience)
    }
}
