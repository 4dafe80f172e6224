import AuthCore
import FuzzSupport

/// The email, password and role rules on any input: no trap, and the
/// invariants hold (a normalised email is stable and within the limits).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRules(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let email = EmailRule.normalize(text) {
        precondition(email.utf8.count <= EmailRule.maximumBytes, "normalised email too long")
        precondition(EmailRule.normalize(email) == email, "normalisation is not stable")
        precondition(email.split(separator: "@", omittingEmptySubsequences: false).count == 2, "not one @")
    }
    _ = EmailRule.accountKey(text)
    for scheme in PasswordScheme.allCases {
        do {
            try PasswordPolicy.validateNew(text, field: "password", scheme: scheme)
            precondition(
                text.utf8.count <= scheme.maximumPasswordBytes && !text.utf8.contains(0), "accepted a bad password")
            precondition(text.unicodeScalars.count >= PasswordPolicy.minimumCharacters, "accepted a short password")
        } catch {}
        precondition(
            PasswordPolicy.isUsableAtLogin(text, scheme: scheme) == (text.utf8.count <= scheme.maximumPasswordBytes),
            "usable at login disagrees with the scheme's limit")
    }
    _ = RoleRule.isValid(text)
    return 0
}

@_cdecl("FuzzRules_main")
public func fuzzerEntry(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzRules)
}
