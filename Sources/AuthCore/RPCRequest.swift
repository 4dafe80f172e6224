/// One JSON-RPC 2.0 request, validated. `id == nil` marks a notification.
public struct RPCRequest: Sendable {
    public let id: JSONValue?
    public let method: String
    public let params: JSONObject

    public init(id: JSONValue?, method: String, params: JSONObject) {
        self.id = id
        self.method = method
        self.params = params
    }

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
        let params: JSONObject
        switch object["params"] {
        case nil, .null?: params = JSONObject()
        case .object(let given)?: params = given
        default:
            return .failure(
                Rejection(
                    id: id, error: .invalidParams(field: "params", "Params must be an object"),
                    answer: id != nil))
        }
        return .success(RPCRequest(id: id, method: method, params: params))
    }
}
