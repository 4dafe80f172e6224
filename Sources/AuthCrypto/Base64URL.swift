/// Base64url without padding (RFC 4648 §5, as JWS requires), encoded and
/// decoded by hand so the token hot path never goes through Foundation.
/// The work is done on raw buffers (non-generic, so it is fast across
/// module boundaries); the collection overloads are conveniences.
public enum Base64URL {
    private static let alphabet: [UInt8] = Array(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// 0xFF marks a byte that is not in the alphabet.
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        String(decoding: encodeToBytes(bytes), as: UTF8.self)
    }

    public static func encode(_ bytes: ArraySlice<UInt8>) -> String {
        encode(Array(bytes))
    }

    public static func encodeToBytes(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { encodeToBytes(raw: $0) }
    }

    public static func encodeToBytes(raw input: UnsafeRawBufferPointer) -> [UInt8] {
        let count = input.count
        // Never build an empty array through unsafeUninitializedCapacity:
        // it stores the count into the shared empty-array singleton, which
        // ThreadSanitizer rightly reports as a race between threads.
        guard count > 0 else { return [] }
        let outputCount = (count * 4 + 2) / 3
        return [UInt8](unsafeUninitializedCapacity: outputCount) { output, initialized in
            alphabet.withUnsafeBufferPointer { table in
                var out = 0
                var index = 0
                while index + 3 <= count {
                    let b0 = input[index]
                    let b1 = input[index + 1]
                    let b2 = input[index + 2]
                    output[out] = table[Int(b0 >> 2)]
                    output[out + 1] = table[Int(((b0 & 0x03) << 4) | (b1 >> 4))]
                    output[out + 2] = table[Int(((b1 & 0x0F) << 2) | (b2 >> 6))]
                    output[out + 3] = table[Int(b2 & 0x3F)]
                    out += 4
                    index += 3
                }
                let rest = count - index
                if rest == 1 {
                    let b0 = input[index]
                    output[out] = table[Int(b0 >> 2)]
                    output[out + 1] = table[Int((b0 & 0x03) << 4)]
                    out += 2
                } else if rest == 2 {
                    let b0 = input[index]
                    let b1 = input[index + 1]
                    output[out] = table[Int(b0 >> 2)]
                    output[out + 1] = table[Int(((b0 & 0x03) << 4) | (b1 >> 4))]
                    output[out + 2] = table[Int((b1 & 0x0F) << 2)]
                    out += 3
                }
                initialized = out
            }
        }
    }

    /// Decodes unpadded base64url; `nil` for padding, a foreign byte, a
    /// length of 1 mod 4, or non-zero trailing bits (non-canonical input).
    public static func decode(raw input: UnsafeRawBufferPointer) -> [UInt8]? {
        let count = input.count
        if count % 4 == 1 { return nil }
        var valid = true
        let decoded = [UInt8](unsafeUninitializedCapacity: count * 3 / 4 + 1) { output, initialized in
            reverse.withUnsafeBufferPointer { table in
                var accumulator: UInt32 = 0
                var bits: UInt32 = 0
                var out = 0
                for index in 0..<count {
                    let value = table[Int(input[index])]
                    if value == 0xFF {
                        valid = false
                        break
                    }
                    accumulator = (accumulator << 6) | UInt32(value)
                    bits += 6
                    if bits >= 8 {
                        bits -= 8
                        output[out] = UInt8(truncatingIfNeeded: accumulator >> bits)
                        out += 1
                    }
                }
                // Leftover bits must be zero, or two encodings would decode alike.
                if valid && bits > 0 && (accumulator & ((1 << bits) - 1)) != 0 { valid = false }
                initialized = out
            }
        }
        return valid ? decoded : nil
    }

    public static func decode(_ bytes: [UInt8]) -> [UInt8]? {
        bytes.withUnsafeBytes { decode(raw: $0) }
    }

    public static func decode(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        bytes.withUnsafeBytes { decode(raw: $0) }
    }

    public static func decode(_ string: String) -> [UInt8]? {
        var string = string
        return string.withUTF8 { decode(raw: UnsafeRawBufferPointer($0)) }
    }
}
