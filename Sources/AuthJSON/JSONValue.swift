/// A JSON value as the wire carries it. Numbers keep their original text so
/// a request `id` is echoed exactly as sent; objects keep their key order.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public static func int<I: BinaryInteger>(_ value: I) -> JSONValue {
        if let value = Int64(exactly: value) { return .number(decimal(value)) }
        return .number(String(value))
    }

    /// The common cases without the generic conversion.
    public static func int(_ value: Int64) -> JSONValue { .number(decimal(value)) }
    public static func int(_ value: Int) -> JSONValue { .number(decimal(Int64(value))) }

    /// `String(value)` without the generic path (`_description(radix:)`
    /// cost more than the rest of a cached token's check): the digits are
    /// written backwards into 20 bytes, and a string of up to 15 bytes
    /// lives inline, with no allocation.
    static func decimal(_ value: Int64) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var magnitude = value.magnitude
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude != 0
            if value < 0 {
                start -= 1
                digits[start] = UInt8(ascii: "-")
            }
            return String(decoding: UnsafeBufferPointer(rebasing: digits[start...]), as: UTF8.self)
        }
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The value as a whole number, if it is a JSON number without fraction
    /// or exponent that fits `Int64`.
    public var int64Value: Int64? {
        guard case .number(let text) = self else { return nil }
        return Int64(text)
    }
}

/// One member of a JSON object. A struct, not a tuple: tuple types cost a
/// runtime metadata lookup in generic code on the hot path.
public struct JSONMember: Sendable, Equatable {
    public var key: String
    public var value: JSONValue

    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// A JSON object: ordered members, looked up by a linear scan (objects on
/// this protocol are small). With duplicate keys the last one wins.
public struct JSONObject: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public var members: [JSONMember] {
        didSet { encoding = nil }
    }
    /// The object's bytes as `JSONWriter` writes them, when made in advance
    /// (`withEncoding`) for an object written many times; any change to the
    /// members drops them.
    private(set) var encoding: [UInt8]?

    public init(_ members: [JSONMember] = []) {
        self.members = members
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.members = elements.map { JSONMember(key: $0.0, value: $0.1) }
    }

    public subscript(key: String) -> JSONValue? {
        get {
            var index = members.count - 1
            while index >= 0 {
                if members[index].key == key { return members[index].value }
                index -= 1
            }
            return nil
        }
        set {
            members.removeAll { $0.key == key }
            if let newValue { members.append(JSONMember(key: key, value: newValue)) }
        }
    }

    public var keys: [String] { members.map(\.key) }

    /// This object, carrying its encoding: `JSONWriter` then copies the
    /// bytes instead of walking the members.
    public func withEncoding() -> JSONObject {
        var copy = self
        copy.encoding = JSONWriter.encode(.object(self))
        return copy
    }

    /// Equal members; a made encoding does not count.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.members == rhs.members
    }

}
