extension String {
    /// Whether the two strings are the same UTF-8 bytes. `==` is canonical
    /// equivalence (a copy spelled with other code points is equal), and a
    /// `UTF8View` compared element by element costs more than a cached
    /// token's whole check; this compares lengths, then eight bytes at a
    /// time (for an issuer or an audience; the token cache's key, hundreds
    /// of bytes, uses `memcmp`).
    public func hasSameUTF8(as other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        return utf8.withContiguousStorageIfAvailable { left in
            other.utf8.withContiguousStorageIfAvailable { right in
                Self.sameBytes(UnsafeRawBufferPointer(left), UnsafeRawBufferPointer(right))
            } ?? utf8.elementsEqual(other.utf8)
        } ?? utf8.elementsEqual(other.utf8)
    }

    /// Two buffers of the same length.
    private static func sameBytes(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        while index + 8 <= left.count {
            guard
                left.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    == right.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            else { return false }
            index += 8
        }
        while index < left.count {
            guard left[index] == right[index] else { return false }
            index += 1
        }
        return true
    }
}
