/// Encodes JSON-RPC responses as one line each, newline included.
public enum RPCResponse {
    public static func success(id: JSONValue, result: JSONValue) -> [UInt8] {
        var writer = JSONWriter(capacity: 512)
        writer.appendASCII("{\"jsonrpc\":\"2.0\",\"id\":")
        writer.write(id)
        writer.appendASCII(",\"result\":")
        writer.write(result)
        writer.appendASCII("}\n")
        return writer.bytes
    }

    public static func failure(id: JSONValue, error: AuthError) -> [UInt8] {
        var writer = JSONWriter(capacity: 160)
        writer.appendASCII("{\"jsonrpc\":\"2.0\",\"id\":")
        writer.write(id)
        writer.appendASCII(",\"error\":")
        writer.write(error.wireObject)
        writer.appendASCII("}\n")
        return writer.bytes
    }
}
