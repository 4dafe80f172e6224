import Glibc

extension String {
    /// Whether the two strings are the same UTF-8 bytes. `==` is canonical
    /// equivalence (a copy spelled with other code points is equal), and a
    /// `UTF8View` compared element by element costs more than a cached
    /// token's whole check; this compares lengths, then memory.
    public func hasSameUTF8(as other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        return utf8.withContiguousStorageIfAvailable { left in
            other.utf8.withContiguousStorageIfAvailable { right in
                left.isEmpty || memcmp(left.baseAddress!, right.baseAddress!, left.count) == 0
            } ?? utf8.elementsEqual(other.utf8)
        } ?? utf8.elementsEqual(other.utf8)
    }
}
