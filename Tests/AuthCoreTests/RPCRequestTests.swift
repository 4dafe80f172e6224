import AuthCore
import Testing

@Suite struct RPCRequestTests {
    private func decode(_ line: String) -> Result<RPCRequest, RPCRequest.Rejection> {
        RPCRequest.decode(line: Array(line.utf8))
    }

    @Test func everyMethodIsFoundByItsNameAndNothingElse() {
        for method in RPCMethod.allCases { #expect(RPCMethod(name: method.rawValue) == method) }
        for name in ["", "token", "token.verify ", "Token.verify", "token.verif", "auth.login\u{0}", "(unknown)"] {
            #expect(RPCMethod(name: name) == nil)
        }
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

    @Test func rejections() throws {
        /// The rejection of `line`; a line that decodes is a failed test.
        func rejection(_ line: String) throws -> RPCRequest.Rejection {
            guard case .failure(let rejection) = decode(line) else {
                throw TestFailure("decoded, but should have been rejected: \(line)")
            }
            return rejection
        }
        #expect(try rejection("not json").error.reason == .parseError)
        #expect(try rejection("not json").id == .null)
        #expect(try rejection("[1]").error.reason == .batchNotSupported)
        #expect(try rejection("42").error.reason == .invalidRequest)
        #expect(try rejection(#"{"id":1,"method":"m"}"#).error.reason == .invalidRequest)
        #expect(try rejection(#"{"id":1,"method":"m"}"#).id == .number("1"))
        #expect(try rejection(#"{"jsonrpc":"1.0","id":1,"method":"m"}"#).error.reason == .invalidRequest)
        #expect(try rejection(#"{"jsonrpc":"2.0","id":{},"method":"m"}"#).error.reason == .invalidRequest)
        #expect(try rejection(#"{"jsonrpc":"2.0","id":1,"method":5}"#).error.reason == .invalidRequest)
        // Params that are not an object are the method's to refuse (after
        // authorisation), not the decoder's.
        let arrayParams = try decode(#"{"jsonrpc":"2.0","id":1,"method":"m","params":[1]}"#).get()
        #expect(!arrayParams.paramsAreObject)
        #expect(arrayParams.params.members.isEmpty)
        #expect(try decode(#"{"jsonrpc":"2.0","id":1,"method":"m","params":{}}"#).get().paramsAreObject)
        // The helper itself fails for a line that decodes.
        #expect(throws: TestFailure.self) { try rejection(#"{"jsonrpc":"2.0","id":1,"method":"m"}"#) }
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
        // One rule: one "Bearer " off, nothing else.
        #expect(BearerToken.strip("Bearer  tok") == " tok")
        #expect(BearerToken.strip("Bearer Bearer tok") == "Bearer tok")
        #expect(BearerToken.strip("bearer tok") == "bearer tok")
        #expect(BearerToken.strip("Bearer    ") == nil)
        #expect(BearerToken.strip("tok") == "tok")
        #expect(BearerToken.strip("Bearer ") == nil)
        #expect(BearerToken.strip("Bearer") == "Bearer")
        #expect(BearerToken.strip("") == nil)
        #expect(BearerToken.strip("Bearer é") == "é")
        // Bytes, not characters: the prefix's space may start a character
        // (a space and a combining accent), and it is still removed.
        #expect(BearerToken.strip("Bearer \u{301}tok") == "\u{301}tok")
        #expect(BearerToken.strip("Bearer\u{301} tok") == "Bearer\u{301} tok")
        #expect(BearerToken.strip("Bearer\u{A0}tok") == "Bearer\u{A0}tok")
    }

    /// Issuer, audience and cached tokens are compared as bytes: a string
    /// spelled with other code points is not the same, though `==` says so.
    @Test func sameUTF8IsByteEqualityNotCanonicalEquivalence() {
        let composed = "issuer-\u{E9}"
        let decomposed = "issuer-e\u{301}"
        #expect(composed == decomposed)
        #expect(!composed.hasSameUTF8(as: decomposed))
        #expect(composed.hasSameUTF8(as: "issuer-" + "\u{E9}"))
        #expect("".hasSameUTF8(as: ""))
        #expect(!"".hasSameUTF8(as: "a"))
        #expect(!"abc".hasSameUTF8(as: "abd"))
        let long = String(repeating: "x", count: 300)
        #expect(long.hasSameUTF8(as: String(repeating: "x", count: 300)))
        #expect(!long.hasSameUTF8(as: String(repeating: "x", count: 299) + "y"))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
