/// Encodes JSON-RPC responses as one line each, newline included.
public enum RPCResponse {
    public static func success(id: JSONValue, result: JSONValue) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(512)
        appendSuccess(id: id, result: result, to: &bytes)
        return bytes
    }

    public static func failure(id: JSONValue, error: AuthError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(160)
        appendFailure(id: id, error: error, to: &bytes)
        return bytes
    }

    /// The success line, written after the end of `bytes`.
    public static func appendSuccess(id: JSONValue, result: JSONValue, to bytes: inout [UInt8]) {
        JSONWriter.appending(to: &bytes) { writer in
            writer.appendASCII("{\"jsonrpc\":\"2.0\",\"id\":")
            writer.write(id)
            writer.appendASCII(",\"result\":")
            writer.write(result)
            writer.appendASCII("}\n")
        }
    }

    /// The error line, written after the end of `bytes`.
    public static func appendFailure(id: JSONValue, error: AuthError, to bytes: inout [UInt8]) {
        JSONWriter.appending(to: &bytes) { writer in
            writer.appendASCII("{\"jsonrpc\":\"2.0\",\"id\":")
            writer.write(id)
            writer.appendASCII(",\"error\":")
            writer.write(error.wireObject)
            writer.appendASCII("}\n")
        }
    }
}
