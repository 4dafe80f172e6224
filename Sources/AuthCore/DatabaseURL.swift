/// A PostgreSQL connection URL, as libpq spells it:
/// `postgresql://user[:password]@host[:port]/database[?param=value&…]`.
/// The host may be a socket directory (`?host=/run/postgresql`, or `%2F…`
/// in the host part). Query parameters: `host`, `port`, `user`, `sslmode`
/// (`disable`, `prefer` (libpq's default), `require`: encrypted, or
/// `verify-full`: encrypted to a server whose certificate names the host)
/// and `application_name`; any other is refused, by name. No user name
/// means the daemon's own (as libpq's peer authentication expects).
/// Parsed by hand: the core uses no Foundation.
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, Equatable {
        case disable, prefer, require
        case verifyFull = "verify-full"
    }

    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        /// The server's socket file is `directory/.s.PGSQL.port`.
        case socket(directory: String, port: Int)

        public var port: Int {
            switch self {
            case .tcp(_, let port), .socket(_, let port): port
            }
        }
    }

    public var endpoint: Endpoint
    /// Empty: the daemon's own user name.
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    public var applicationName: String?

    public init(
        endpoint: Endpoint, username: String, password: String?, database: String, tls: TLSMode = .prefer,
        applicationName: String? = nil
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.applicationName = applicationName
    }

    /// The socket file of a `.socket` endpoint.
    public var socketPath: String? {
        guard case .socket(let directory, let port) = endpoint else { return nil }
        return directory.hasSuffix("/") ? "\(directory).s.PGSQL.\(port)" : "\(directory)/.s.PGSQL.\(port)"
    }

    /// The URL with its password masked, for logs and errors.
    public var description: String {
        let credentials = username + (password == nil ? "" : ":***")
        let userInfo = credentials.isEmpty ? "" : credentials + "@"
        switch endpoint {
        case .tcp(let host, let port):
            return "postgresql://\(userInfo)\(host):\(port)/\(database)?sslmode=\(tls.rawValue)"
        case .socket(let directory, let port):
            return "postgresql://\(userInfo)/\(database)?host=\(directory)&port=\(port)"
        }
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// Parses a URL; the error says what is wrong, never echoing a password.
    public static func parse(_ text: String) throws(ParseError) -> DatabaseURL {
        var rest = Substring(text)
        guard let scheme = rest.firstRange(of: "://") else { throw ParseError("not a URL (postgresql://…)") }
        guard ["postgresql", "postgres"].contains(rest[..<scheme.lowerBound]) else {
            throw ParseError("the scheme must be postgresql://")
        }
        rest = rest[scheme.upperBound...]
        var query = Substring("")
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var username = ""
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                username = try decode(userInfo[..<colon], "user name")
                password = try decode(userInfo[userInfo.index(after: colon)...], "password")
            } else {
                username = try decode(userInfo, "user name")
            }
        }
        var host: String?
        var port = 5432
        if !rest.isEmpty {
            var hostPart = rest
            if let colon = rest.lastIndex(of: ":"), !rest.hasPrefix("[") || rest[..<colon].hasSuffix("]") {
                port = try parsePort(rest[rest.index(after: colon)...])
                hostPart = rest[..<colon]
            }
            host = try decode(hostPart, "host")
        }
        var tls = TLSMode.prefer
        var applicationName: String?
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            guard let equals = pair.firstIndex(of: "=") else { throw ParseError("query parameter without a value") }
            let key = pair[..<equals]
            let value = try decode(pair[pair.index(after: equals)...], String(key))
            switch key {
            case "host": host = value
            case "port": port = try parsePort(Substring(value))
            case "user": username = value
            case "password": password = value
            case "dbname": path = Substring(value)
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    throw ParseError("sslmode must be disable, prefer, require or verify-full")
                }
                tls = mode
            case "application_name": applicationName = value
            default:
                throw ParseError("unknown parameter '\(key)' (supported: host, port, user, sslmode, application_name)")
            }
        }
        let database = try decode(path, "database name")
        guard !database.isEmpty else { throw ParseError("no database name (postgresql://host/NAME)") }
        guard let host, !host.isEmpty else { throw ParseError("no host or socket directory") }
        let endpoint: Endpoint =
            host.hasPrefix("/") ? .socket(directory: host, port: port) : .tcp(host: host, port: port)
        return DatabaseURL(
            endpoint: endpoint, username: username, password: password, database: database, tls: tls,
            applicationName: applicationName)
    }

    private static func parsePort(_ text: Substring) throws(ParseError) -> Int {
        guard let port = Int(text), (1...65535).contains(port) else { throw ParseError("the port must be 1–65535") }
        return port
    }

    /// Percent-decoding (RFC 3986); the result must be UTF-8 without NUL.
    private static func decode(_ text: Substring, _ what: String) throws(ParseError) -> String {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let high = utf8.index(after: index)
                guard high < utf8.endIndex, utf8.index(after: high) < utf8.endIndex,
                    let h = hexValue(utf8[high]), let l = hexValue(utf8[utf8.index(after: high)])
                else { throw ParseError("bad percent-encoding in the \(what)") }
                bytes.append(h << 4 | l)
                index = utf8.index(high, offsetBy: 2)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        guard !bytes.contains(0), let decoded = String(validating: bytes, as: UTF8.self) else {
            throw ParseError("the \(what) is not valid text")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
