import AuthCore
import Testing

@Suite struct RPCRequestTests {
    private func decode(_ line: String) -> Result<RPCRequest, RPCRequest.Rejection> {
        RPCRequest.decode(line: Array(line.utf8))
    }

    @Test func decodesARequest() throws {
        let request = try decode(#"{"jsonrpc":"2.0","id":7,"method":"auth.login","params":{"email":"a"}}"#).get()
        #expect(request.id == .number("7"))
        #expect(request.method == "auth.login")
        #expect(request.params["email"] == .string("a"))
        #expect(!request.isNotification)
    }

    @Test func aRequestWithoutIDIsANotification() throws {
        let request = try decode(#"{"jsonrpc":"2.0","method":"sys.health"}"#).get()
        #expect(request.isNotification)
        #expect(request.params.members.isEmpty)
    }

    @Test func stringAndNullIDsAreKept() throws {
        #expect(try decode(#"{"jsonrpc":"2.0","id":"abc","method":"m"}"#).get().id == .string("abc"))
        #expect(try decode(#"{"jsonrpc":"2.0","id":null,"method":"m"}"#).get().id == .null)
    }

    @Test func rejections() {
        func reason(_ line: String) -> (AuthError.Reason?, JSONValue?, Bool) {
            if case .failure(let rejection) = decode(line) {
                return (rejection.error.reason, rejection.id, rejection.answer)
            }
            return (nil, nil, false)
        }
        #expect(reason("not json").0 == .parseError)
        #expect(reason("not json").1 == .null)
        #expect(reason("[1]").0 == .batchNotSupported)
        #expect(reason("42").0 == .invalidRequest)
        #expect(reason(#"{"id":1,"method":"m"}"#).0 == .invalidRequest)
        #expect(reason(#"{"id":1,"method":"m"}"#).1 == .number("1"))
        #expect(reason(#"{"jsonrpc":"1.0","id":1,"method":"m"}"#).0 == .invalidRequest)
        #expect(reason(#"{"jsonrpc":"2.0","id":{},"method":"m"}"#).0 == .invalidRequest)
        #expect(reason(#"{"jsonrpc":"2.0","id":1,"method":5}"#).0 == .invalidRequest)
        #expect(reason(#"{"jsonrpc":"2.0","id":1,"method":"m","params":[1]}"#).0 == .invalidParams)
        // A notification with bad params gets no answer.
        #expect(reason(#"{"jsonrpc":"2.0","method":"m","params":[1]}"#).2 == false)
    }

    @Test func responsesAreOneLine() throws {
        let success = RPCResponse.success(id: .number("1"), result: .object(["ok": .bool(true)]))
        #expect(String(decoding: success, as: UTF8.self) == "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"ok\":true}}\n")
        let failure = RPCResponse.failure(id: .null, error: .rateLimited(retryAfter: 30))
        let parsed = try JSONParser.parse(Array(failure.dropLast()))
        let error = parsed.objectValue?["error"]?.objectValue
        #expect(error?["code"] == .number("429"))
        #expect(error?["data"]?.objectValue?["reason"] == .string("rate_limited"))
        #expect(error?["data"]?.objectValue?["retry_after"] == .number("30"))
    }

    @Test func internalErrorsNeverCarryTheirCauseOnTheWire() {
        let error = AuthError.internalError("SQLITE_FULL at /var/lib/authd/authd.sqlite3")
        let wire = JSONWriter.encodeString(error.wireObject)
        #expect(!wire.contains("SQLITE"))
        #expect(!wire.contains("/var/lib"))
        #expect(error.logDetail?.contains("SQLITE_FULL") == true)
    }

    @Test func paramsHelpersNameTheField() {
        let params: JSONObject = [
            "token": .number("1"), "empty": .string(""), "bearer": .string("Bearer "),
            "good": .string("Bearer abc"),
        ]
        #expect(throws: AuthError.invalidParams(field: "token")) { try params.bearerToken("token") }
        #expect(throws: AuthError.invalidParams(field: "missing")) { try params.bearerToken("missing") }
        #expect(throws: AuthError.noToken) { try params.bearerToken("empty") }
        #expect(throws: AuthError.noToken) { try params.bearerToken("bearer") }
        #expect((try? params.bearerToken("good")) == "abc")
    }
}
