import AuthProtocol
import Testing

@testable import AuthClient

@Suite struct ErrorMappingTests {
    @Test func everyProtocolReasonMapsToACaseThatNamesIt() {
        for reason in ErrorReason.allCases {
            let error = AuthError(code: 400, reason: reason.rawValue, field: "f", retryAfter: 3)
            #expect(error.reason == reason.rawValue, "\(reason)")
            if case .badResponse = error { Issue.record("\(reason) read as a bad response") }
            if case .other = error { Issue.record("\(reason) not known to the client") }
        }
    }

    @Test func aReasonFromANewerDaemonIsAGeneralCaseNotADecodingFailure() {
        let error = AuthError(code: 503, reason: "maintenance", field: nil, retryAfter: 2)
        #expect(error == .other(reason: "maintenance", code: 503, retryAfter: 2))
        #expect(error.reason == "maintenance")
        #expect(error.retryAfter == 2)
    }

    @Test func theReadmesCallPatternsKeepCompiling() {
        func classify(_ error: any Error) -> String {
            switch error {
            case AuthError.tokenExpired: return "expired"
            case AuthError.rateLimited(let retryAfter): return "limited \(retryAfter ?? 0)"
            default: return "other"
            }
        }
        #expect(classify(AuthError(code: 401, reason: "token_expired", field: nil, retryAfter: nil)) == "expired")
        #expect(classify(AuthError(code: 429, reason: "rate_limited", field: nil, retryAfter: 30)) == "limited 30")
        #expect(classify(AuthError(code: 500, reason: nil, field: nil, retryAfter: nil)) == "other")
    }
}
