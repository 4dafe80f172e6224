/// One JSON-RPC 2.0 request, validated as a request. `id == nil` marks a
/// notification. Params that are not an object are kept as such
/// (`paramsAreObject == false`), not refused here: an admin method refuses
/// a non-admin caller before any param is looked at, their shape included.
public struct RPCRequest: Sendable {
    public let id: JSONValue?
    public let method: String
    /// The params object (empty when absent or not an object).
    public let params: JSONObject
    public let paramsAreObject: Bool

    public init(id: JSONValue?, method: String, params: JSONObject, paramsAreObject: Bool = true) {
        self.id = id
        self.method = method
        self.params = params
        self.paramsAreObject = paramsAreObject
    }

    /// The `-32602` for params that are not an object.
    public static let paramsMustBeAnObject = AuthError.invalidParams(field: "params", "Params must be an object")

    public var isNotification: Bool { id == nil }

    /// A line that could not become a request, with the id to answer under
    /// (`nil` when the line was a notification and gets no answer).
    public struct Rejection: Error, Sendable {
        public let id: JSONValue?
        public let error: AuthError
        public let answer: Bool
    }

    /// Decodes one line (without its newline). Parse errors answer with id
    /// null; requests without a usable id get `-32600` with id null.
    public static func decode<Bytes: ContiguousUTF8>(line: Bytes) -> Result<RPCRequest, Rejection> {
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            return .failure(Rejection(id: .null, error: .parseError, answer: true))
        }
        guard case .object(let object) = value else {
            if case .array = value {
                return .failure(Rejection(id: .null, error: .batchNotSupported, answer: true))
            }
            return .failure(Rejection(id: .null, error: .invalidRequest, answer: true))
        }
        var id: JSONValue? = nil
        if let rawID = object["id"] {
            switch rawID {
            case .string, .number, .null: id = rawID
            default: return .failure(Rejection(id: .null, error: .invalidRequest, answer: true))
            }
        }
        guard object["jsonrpc"] == .string("2.0"), case .string(let method)? = object["method"] else {
            return .failure(Rejection(id: id ?? .null, error: .invalidRequest, answer: true))
        }
        switch object["params"] {
        case nil, .null?: return .success(RPCRequest(id: id, method: method, params: JSONObject()))
        case .object(let given)?: return .success(RPCRequest(id: id, method: method, params: given))
        default: return .success(RPCRequest(id: id, method: method, params: JSONObject(), paramsAreObject: false))
        }
    }
}
