/// A security event with its OWASP Logging Vocabulary name and the journal
/// fields the contract lists. It holds no password, token or secret by
/// construction: there is no field for one.
public struct SecurityEvent: Sendable {
    public enum Name: String, Sendable, CaseIterable {
        case loginSuccess = "authn_login_success"
        case loginFail = "authn_login_fail"
        case loginLock = "authn_login_lock"
        case mfaSuccess = "authn_mfa_success"
        case mfaFail = "authn_mfa_fail"
        case tokenCreated = "authn_token_created"
        case tokenRefreshed = "authn_token_refreshed"
        case tokenRevoked = "authn_token_revoked"
        case tokenReuse = "authn_token_reuse"
        case tokenInvalid = "authn_token_invalid"
        case authzFail = "authz_fail"
        case userCreated = "user_created"
        case userUpdated = "user_updated"
        case userDeleted = "user_deleted"
        case sessionExpired = "session_expired"
        case startup = "sys_startup"
        case shutdown = "sys_shutdown"
        case backup = "sys_backup"

        /// One fixed 128-bit `MESSAGE_ID` per event, as in the catalog.
        public var messageID: String {
            switch self {
            case .loginSuccess: "bf0aad772eac487e8a137739b8dc3e23"
            case .loginFail: "281f28b459c44dd1854bcc8424713137"
            case .loginLock: "47ac7849370c4dbba44c3735224f6609"
            case .mfaSuccess: "90fd22d882ec43c18087715e921b7d6e"
            case .mfaFail: "1178e72ee2d74ca891950f755d04d2cc"
            case .tokenCreated: "8581179ac3114f84aa51c49340c57c50"
            case .tokenRefreshed: "9420a5a1a51a448ea2214b4746ff493d"
            case .tokenRevoked: "40aa1fa1d4b44e458def74e97254b1c5"
            case .tokenReuse: "3430bfb581ec432cb24d11891631f6d0"
            case .tokenInvalid: "05acdb581d4f4d5cae0f99e0da54f017"
            case .authzFail: "6ee48846ff664bf89bea37ca04c02c06"
            case .userCreated: "42ca2b7558674704bb7801ab579e2b5d"
            case .userUpdated: "42c91d481dc34109a4550df0d41a0340"
            case .userDeleted: "4be8ea61a50943bda48e0ccc539b49e4"
            case .sessionExpired: "b6d167b6a813476f87454a04523e5563"
            case .startup: "e8ed83034e014de8af4736f39ec5efe6"
            case .shutdown: "06d2cde8672646438ff2905228e22a69"
            case .backup: "5b0f3c9e2d4a4e8b9c61d7a2f08e4b13"
            }
        }

        /// syslog priority: 4 warning, 5 notice, 6 info.
        public var priority: Int {
            switch self {
            case .loginFail, .loginLock, .mfaFail, .tokenReuse, .tokenInvalid, .authzFail: 4
            case .userCreated, .userUpdated, .userDeleted, .tokenRevoked, .startup, .shutdown, .backup: 5
            case .loginSuccess, .mfaSuccess, .tokenCreated, .tokenRefreshed, .sessionExpired: 6
            }
        }
    }

    public var name: Name
    public var message: String
    public var peerUID: UInt32?
    public var peerPID: Int32?
    public var client: String?
    public var userID: Int64?
    public var email: String?
    public var reason: String?
    /// For an aggregated entry: how many events of this name from this peer
    /// it stands for (`AUTHD_COUNT`).
    public var count: Int?

    /// No logged field is longer than this (bytes): a peer's 60 KB `client`
    /// never reaches the journal whole.
    public static let maximumFieldBytes = 256

    public init(
        _ name: Name, _ message: String, peerUID: UInt32? = nil, peerPID: Int32? = nil, client: String? = nil,
        userID: Int64? = nil, email: String? = nil, reason: String? = nil
    ) {
        self.name = name
        self.message = message
        self.peerUID = peerUID
        self.peerPID = peerPID
        self.client = client
        self.userID = userID
        self.email = email
        self.reason = reason
    }

    /// The journal fields in a fixed order, each value at most
    /// `maximumFieldBytes` (cut at a character boundary).
    public var fields: [(String, String)] {
        var fields: [(String, String)] = [
            ("MESSAGE", message), ("PRIORITY", String(name.priority)), ("MESSAGE_ID", name.messageID),
            ("AUTHD_EVENT", name.rawValue),
        ]
        if let peerUID { fields.append(("AUTHD_PEER_UID", String(peerUID))) }
        if let peerPID { fields.append(("AUTHD_PEER_PID", String(peerPID))) }
        if let client { fields.append(("AUTHD_CLIENT", client)) }
        if let userID { fields.append(("AUTHD_USER_ID", String(userID))) }
        if let email { fields.append(("AUTHD_EMAIL", email)) }
        if let reason { fields.append(("AUTHD_REASON", reason)) }
        if let count { fields.append(("AUTHD_COUNT", String(count))) }
        return fields.map { ($0.0, SecurityEvent.capped($0.1)) }
    }

    /// `value` cut to at most `maximumFieldBytes` bytes of whole characters.
    static func capped(_ value: String) -> String {
        guard value.utf8.count > maximumFieldBytes else { return value }
        var end = value.startIndex
        var bytes = 0
        for index in value.unicodeScalars.indices {
            let length = value.unicodeScalars[index].utf8.count
            if bytes + length > maximumFieldBytes { break }
            bytes += length
            end = value.unicodeScalars.index(after: index)
        }
        return String(value.unicodeScalars[..<end])
    }

    /// One JSON object per line, keys as the journal names them.
    public var jsonLine: [UInt8] {
        var writer = JSONWriter(capacity: 256)
        writer.write(.object(JSONObject(fields.map { JSONMember(key: $0.0, value: .string($0.1)) })))
        writer.appendRaw([0x0A])
        return writer.bytes
    }
}
