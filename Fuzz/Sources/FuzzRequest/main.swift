import AuthCore
import FuzzSupport

/// One request line: decoding and validation must never crash, hang or
/// leak, whatever the bytes; an accepted request must round-trip its id and
/// its params must answer every typed accessor without trapping.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let line = UnsafeRawBufferPointer(start: data, count: size)
    switch RPCRequest.decode(line: line) {
    case .success(let request):
        if let id = request.id {
            _ = RPCResponse.success(id: id, result: .object(request.params))
        }
        for field in ["email", "password", "token", "id", "limit", "active", "after", "refresh_token"] {
            _ = try? request.params.requiredString(field)
            _ = try? request.params.optionalBool(field)
            _ = try? request.params.optionalInt(field)
            _ = try? request.params.requiredID(field)
            _ = try? request.params.bearerToken(field)
        }
        // Whatever was parsed writes back as one line that parses again.
        let written = JSONWriter.encode(.object(request.params))
        precondition(!written.contains(0x0A), "a newline escaped the writer")
        precondition((try? JSONParser.parse(written)) == .object(request.params), "round trip failed")
    case .failure(let rejection):
        _ = RPCResponse.failure(id: rejection.id ?? .null, error: rejection.error)
    }
    return 0
}

@_cdecl("FuzzRequest_main")
public func fuzzerEntry(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzRequest)
}
