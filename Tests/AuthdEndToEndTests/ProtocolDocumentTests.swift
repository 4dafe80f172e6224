import AuthCore
import AuthDaemon
import Foundation
import Testing

/// The published OpenRPC document and the daemon agree on the methods.
@Suite struct ProtocolDocumentTests {
    static var document: JSONObject {
        get throws {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent()
            let data = try Data(contentsOf: root.appendingPathComponent("protocol/openrpc.json"))
            guard let object = try JSONParser.parse(Array(data)).objectValue else { throw DaemonError("not an object") }
            return object
        }
    }

    static var documentedMethods: Set<String> {
        get throws {
            guard case .array(let methods)? = try document["methods"] else { throw DaemonError("no methods") }
            return Set(methods.compactMap { $0.objectValue?.string("name") })
        }
    }

    @Test func everyServedMethodIsDocumentedAndNoOther() throws {
        #expect(try ProtocolDocumentTests.documentedMethods == Set(RPCMethod.allCases.map(\.rawValue)))
    }

    @Test func theRunningDaemonKnowsEveryDocumentedMethod() throws {
        try withDaemon { _, rpc in
            for method in try ProtocolDocumentTests.documentedMethods.sorted() {
                let response = try rpc.call(method, [:])
                #expect(response.errorReason != "method_not_found", "\(method)")
            }
        }
    }

    @Test func everyReasonIsDocumentedAsAnError() throws {
        guard case .object(let errors)? = try ProtocolDocumentTests.document["components"]?.objectValue?["errors"]
        else {
            throw DaemonError("no errors")
        }
        let documented = Set(errors.members.compactMap { $0.value.objectValue?["data"]?.objectValue?.string("reason") })
        #expect(documented == Set(AuthError.Reason.allCases.map(\.rawValue)))
    }
}
