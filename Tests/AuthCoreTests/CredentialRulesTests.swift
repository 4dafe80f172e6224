import AuthCore
import AuthCrypto
import Testing

@Suite struct CredentialRulesTests {
    @Test func emailsAreTrimmedAndLowerCased() {
        #expect(EmailRule.normalize("  Alice@Example.COM \n") == "alice@example.com")
    }

    @Test(arguments: ["", "alice", "@example.com", "alice@", "a@b@c", "a b@example.com", "a\u{0}@x"])
    func invalidEmails(_ email: String) {
        #expect(EmailRule.normalize(email) == nil)
    }

    @Test func composedAndDecomposedSpellingsAreOneAddress() {
        let composed = "jos\u{E9}@x.com"
        let decomposed = "jose\u{301}@x.com"
        #expect(Array(composed.utf8) != Array(decomposed.utf8))
        let a = EmailRule.normalize(composed)
        let b = EmailRule.normalize(decomposed)
        #expect(a != nil)
        // Compared as bytes: `String ==` would call them equal anyway.
        #expect(a.map { Array($0.utf8) } == b.map { Array($0.utf8) })
        #expect(a.map { Array($0.utf8) } == Array(composed.utf8))
        #expect(EmailRule.accountKey(decomposed).utf8.elementsEqual(composed.utf8))
        // The Kelvin sign is K after NFC, then k.
        #expect(EmailRule.normalize("\u{212A}im@x.com").map { Array($0.utf8) } == Array("kim@x.com".utf8))
    }

    @Test(arguments: [
        "a\u{200B}b@x.com", "ab@x.com\u{202E}", "\u{2066}ab@x.com", "a\u{FEFF}b@x.com", "a\u{2060}b@x.com",
        "a\u{2028}b@x.com", "a\u{00AD}b@x.com", "a\u{E000}b@x.com", "a\u{061C}b@x.com", "a\u{200D}b@x.com",
    ])
    func invisibleAndBidiCharactersAreRefused(_ email: String) {
        #expect(EmailRule.normalize(email) == nil)
    }

    @Test func visibleNonASCIIAddressesAreAccepted() {
        #expect(EmailRule.normalize("Zo\u{EB}@b\u{FC}cher.de") == "zo\u{EB}@b\u{FC}cher.de")
        #expect(EmailRule.normalize("\u{7528}\u{6237}@\u{4F8B}\u{5B50}.cn") != nil)
    }

    @Test func emailLengthLimitIs254Bytes() {
        let local = String(repeating: "a", count: 64)
        let domain = String(repeating: "b", count: 254 - 65)
        #expect(EmailRule.normalize(local + "@" + domain) != nil)
        #expect(EmailRule.normalize(local + "@" + domain + "c") == nil)
    }

    @Test func accountKeyIsTheSameWhetherOrNotTheAddressIsValid() {
        #expect(EmailRule.accountKey(" Bob@X.org ") == "bob@x.org")
        #expect(EmailRule.accountKey(" NotAnEmail ") == "notanemail")
    }

    @Test func passwordRules() {
        #expect(throws: AuthError.weakPassword(field: "password")) {
            try PasswordPolicy.validateNew("short", field: "password", scheme: .bcrypt)
        }
        // Eight scalars of two bytes each: long enough, 16 bytes.
        #expect(throws: Never.self) { try PasswordPolicy.validateNew("éééééééé", field: "password", scheme: .bcrypt) }
        #expect(throws: AuthError.weakPassword(field: "new_password")) {
            try PasswordPolicy.validateNew("ééééééé", field: "new_password", scheme: .bcrypt)
        }
        #expect(throws: Never.self) {
            try PasswordPolicy.validateNew(String(repeating: "a", count: 72), field: "password", scheme: .bcrypt)
        }
        #expect(throws: AuthError.passwordTooLong(field: "password")) {
            try PasswordPolicy.validateNew(String(repeating: "a", count: 73), field: "password", scheme: .bcrypt)
        }
        // argon2id reads every byte: up to 1024 of them.
        #expect(throws: Never.self) {
            try PasswordPolicy.validateNew(String(repeating: "€", count: 36), field: "password", scheme: .argon2id)
        }
        #expect(throws: Never.self) {
            try PasswordPolicy.validateNew(String(repeating: "a", count: 1024), field: "password", scheme: .argon2id)
        }
        #expect(throws: AuthError.passwordTooLong(field: "password")) {
            try PasswordPolicy.validateNew(String(repeating: "a", count: 1025), field: "password", scheme: .argon2id)
        }
        #expect(PasswordPolicy.isUsableAtLogin(String(repeating: "a", count: 72), scheme: .bcrypt))
        #expect(!PasswordPolicy.isUsableAtLogin(String(repeating: "a", count: 73), scheme: .bcrypt))
        #expect(PasswordPolicy.isUsableAtLogin(String(repeating: "a", count: 73), scheme: .argon2id))
        // 36 three-byte scalars: 108 bytes.
        #expect(throws: AuthError.passwordTooLong(field: "password")) {
            try PasswordPolicy.validateNew(String(repeating: "€", count: 36), field: "password", scheme: .bcrypt)
        }
        #expect(throws: AuthError.invalidParams(field: "password")) {
            try PasswordPolicy.validateNew("abcdefgh\u{0}ij", field: "password", scheme: .bcrypt)
        }
    }

    @Test func roleNames() {
        #expect(RoleRule.isValid("admin"))
        #expect(RoleRule.isValid("report-reader_2"))
        #expect(!RoleRule.isValid(""))
        #expect(!RoleRule.isValid("Admin"))
        #expect(!RoleRule.isValid(String(repeating: "a", count: 33)))
    }
}

@Suite struct BcryptTests {
    @Test func hashesWith2bAndVerifies() throws {
        let hash = try Bcrypt.hash(Array("correct horse".utf8), cost: 10)
        #expect(hash.hasPrefix("$2b$10$"))
        #expect(hash.utf8.count == 60)
        #expect(Bcrypt.cost(of: hash) == 10)
        #expect(Bcrypt.verify(Array("correct horse".utf8), hash: hash))
        #expect(!Bcrypt.verify(Array("correct horsE".utf8), hash: hash))
        #expect(!Bcrypt.verify(Array("correct horse".utf8), hash: "not a hash"))
        #expect(!Bcrypt.verify(Array("correct\u{0}horse".utf8), hash: hash))
    }

    @Test func saltsDiffer() throws {
        let a = try Bcrypt.hash(Array("same password".utf8), cost: 10)
        let b = try Bcrypt.hash(Array("same password".utf8), cost: 10)
        #expect(a != b)
    }

    @Test func bcryptReadsOnly72Bytes() throws {
        // Why the contract refuses longer passwords: bytes past 72 are ignored.
        let base = String(repeating: "p", count: 72)
        let hash = try Bcrypt.hash(Array(base.utf8), cost: 10)
        #expect(Bcrypt.verify(Array((base + "anything").utf8), hash: hash))
    }

    @Test func costOfOtherStrings() {
        #expect(Bcrypt.cost(of: "$2b$12$abc") == 12)
        #expect(Bcrypt.cost(of: "$1$xyz") == nil)
        #expect(Bcrypt.cost(of: "") == nil)
    }
}

@Suite struct UnmatchableSettingTests {
    @Test func costsAFullHashAtTheConfiguredCostAndNeverMatches() throws {
        let setting = try Bcrypt.unmatchableSetting(cost: 11)
        #expect(setting.hasPrefix("$2b$11$"))
        #expect(Bcrypt.cost(of: setting) == 11)
        #expect(!Bcrypt.verify(Array("anything at all".utf8), hash: setting))
        #expect(!Bcrypt.verify([], hash: setting))
    }
}
