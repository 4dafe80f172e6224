import AuthCore
import Testing

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(
            #"{"a":[1,-2.5e3,true,false,null],"b":{"c":"d\n\u00e9\ud83d\ude00"}}"#)
        guard case .object(let object) = value else {
            Issue.record("not an object")
            return
        }
        #expect(object["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
        #expect(object["b"]?.objectValue?["c"] == .string("d\né😀"))
    }

    @Test func keepsNumberTextForIDs() throws {
        let value = try JSONParser.parse("123456789012345678901234567890")
        #expect(value == .number("123456789012345678901234567890"))
        #expect(JSONWriter.encodeString(value) == "123456789012345678901234567890")
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":}", "{\"a\" 1}", "01", "1.", "-", "1e", "tru", "nul", "\"abc",
        "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "{} {}", "{\"a\":1,}", "'a'", "\"tab\there\"", "NaN",
    ])
    func refusesInvalidJSON(_ text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(text) }
    }

    @Test func refusesInvalidUTF8() {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0x5C, 0x6E, 0xFF, 0x22]) }
    }

    /// The string scanner reads eight bytes at a time: a byte that needs
    /// attention is found at every offset, in the first word and later ones.
    @Test func findsEveryEscapeAndControlByteAtEveryOffset() throws {
        for offset in 0..<26 {
            for special in ["\"", "\\", "\n", "\u{01}", "\u{7F}", "é", "\u{2028}", "😀"] {
                let text = String(repeating: "a", count: offset) + special + String(repeating: "b", count: 25 - offset)
                let line = JSONWriter.encode(.object(["k": .string(text)]))
                let parsed = try JSONParser.parse(line)
                #expect(parsed.objectValue?["k"]?.stringValue == text, "offset \(offset)")
            }
            // Raw, a control byte is refused and a quote ends the string.
            let prefix = Array(#"{"k":""#.utf8) + Array(repeating: UInt8(ascii: "a"), count: offset)
            let suffix = Array(repeating: UInt8(ascii: "b"), count: 25 - offset) + Array(#""}"#.utf8)
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(prefix + [0x0A] + suffix) }
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(prefix + [0x22] + suffix) }
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(prefix + [0xFF] + suffix) }
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(prefix + [0x00] + suffix) }
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(prefix + [0x1F] + suffix) }
            // The bounds: a space is plain, a raw backslash starts an escape.
            let a = String(repeating: "a", count: offset)
            let rest = 25 - offset
            let space = try JSONParser.parse(prefix + [0x20] + suffix)
            #expect(space.objectValue?["k"]?.stringValue == a + " " + String(repeating: "b", count: rest))
            if rest > 0 {
                let escape = try JSONParser.parse(prefix + [0x5C] + suffix)
                #expect(escape.objectValue?["k"]?.stringValue == a + "\u{08}" + String(repeating: "b", count: rest - 1))
            } else {
                // The backslash escapes the closing quote: unterminated.
                #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(prefix + [0x5C] + suffix) }
            }
        }
    }

    @Test func integersAreWrittenAsTheirDecimalDigits() {
        let values: [Int64] = [
            0, 1, -1, 9, 10, -10, 1_796_616_993, 999_999_999_999_999, .max, .min, .max - 1, .min + 1,
        ]
        for value in values { #expect(JSONValue.int(value) == .number(String(value))) }
        #expect(JSONValue.int(UInt64.max) == .number("18446744073709551615"))
        #expect(JSONValue.int(Int32.min) == .number("-2147483648"))
        #expect(JSONValue.int(UInt8(255)) == .number("255"))
    }

    @Test func limitsNestingDepth() throws {
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        _ = try JSONParser.parse(fine)
        let hostile = String(repeating: "[", count: 1_000_000)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(hostile) }
    }

    @Test func duplicateKeysLastWins() throws {
        let value = try JSONParser.parse(#"{"a":1,"a":2}"#)
        #expect(value.objectValue?["a"] == .number("2"))
    }

    @Test func writerEscapesSoALineCannotBreakFraming() throws {
        let tricky = "a\"b\\c\nd\re\tf\u{01}g\u{7F}h\u{2028}é"
        let bytes = JSONWriter.encode(.string(tricky))
        #expect(!bytes.contains(0x0A))
        #expect(!bytes.contains(0x0D))
        #expect(try JSONParser.parse(bytes) == .string(tricky))
        // U+2028 and U+2029 end lines for some readers: escaped, never raw.
        let separators = JSONWriter.encodeString(.string("a\u{2028}b\u{2029}c"))
        #expect(separators == "\"a\\u2028b\\u2029c\"")
        #expect(try JSONParser.parse(Array(separators.utf8)) == .string("a\u{2028}b\u{2029}c"))
        // Other E2 80 xx characters pass through unchanged.
        #expect(JSONWriter.encodeString(.string("\u{2026}")) == "\"\u{2026}\"")
    }

    @Test func writerRoundTripsObjectsInOrder() throws {
        let object: JSONValue = .object(["z": .int(1), "a": .array([.null, .bool(true)]), "m": .string("x")])
        let text = JSONWriter.encodeString(object)
        #expect(text == #"{"z":1,"a":[null,true],"m":"x"}"#)
        #expect(try JSONParser.parse(text) == object)
    }
}

@Suite struct WireShapeTests {
    let user = UserSnapshot(id: 42, email: "a@example.com", role: "editor", active: false, createdAt: 1_800_000_000)

    /// An object carrying its encoding is written as those bytes; a change
    /// to its members drops them, so it is never written stale.
    @Test func aMadeEncodingIsWrittenUntilTheObjectChanges() throws {
        let object: JSONObject = [
            "a": .string("x\ny"), "b": .array([.int(1), .null]), "c": .object(["d": .bool(true)]),
        ]
        let encoded = object.withEncoding()
        #expect(JSONWriter.encode(.object(encoded)) == JSONWriter.encode(.object(object)))
        #expect(
            JSONWriter.encode(.object(["outer": .object(encoded)]))
                == Array(#"{"outer":{"a":"x\ny","b":[1,null],"c":{"d":true}}}"#.utf8))
        #expect(encoded == object)

        var changed = encoded
        changed["a"] = .string("z")
        #expect(JSONWriter.encode(.object(changed)) == Array(#"{"b":[1,null],"c":{"d":true},"a":"z"}"#.utf8))
        var appended = encoded
        appended.members.append(JSONMember(key: "e", value: .null))
        #expect(
            JSONWriter.encode(.object(appended)) == Array(#"{"a":"x\ny","b":[1,null],"c":{"d":true},"e":null}"#.utf8))
        var edited = encoded
        edited.members[0].value = .int(2)
        #expect(JSONWriter.encode(.object(edited)) == Array(#"{"a":2,"b":[1,null],"c":{"d":true}}"#.utf8))
    }

    @Test func theBriefUserHasIdEmailAndRoleWithTheIdAsAString() {
        #expect(JSONWriter.encodeString(user.briefJSON) == #"{"id":"42","email":"a@example.com","role":"editor"}"#)
    }

    @Test func thePublicUserAddsActiveAndCreatedAtAndNeverAHash() {
        #expect(
            JSONWriter.encodeString(user.publicJSON)
                == #"{"id":"42","email":"a@example.com","role":"editor","active":false,"created_at":1800000000}"#)
    }

    @Test func aSessionShowsItsTimesAndItsUserAsAString() {
        let session = SessionRecord(
            id: "s1", userID: 42, createdAt: 1, lastUsedAt: 2, expiresAt: 3, revokedAt: nil)
        #expect(
            JSONWriter.encodeString(session.publicJSON)
                == #"{"id":"s1","user_id":"42","created_at":1,"last_used_at":2,"expires_at":3}"#)
    }
}
