import AuthCore

/// The live view's sessions. A session id as the daemon makes them (11
/// random bytes in base64url, 15 characters) is kept as its 88 bits in a
/// 24-byte `ProbingTable` entry with the user id and expiry; any other id
/// (imported, or made by some other tool) goes in a `Dictionary` beside it.
struct SessionTable {
    /// The 88 bits of a daemon-made session id.
    struct Key: Equatable {
        var high: UInt64
        /// The low 24 bits (the rest are zero).
        var low: UInt32

        /// The bits of `id`, if it is 15 base64url characters whose last
        /// one carries no bits beyond the 88 (so the key gives back exactly
        /// this string: no two ids share a key).
        init?(_ id: String) {
            var id = id
            guard let key = id.withUTF8({ Key(utf8: $0) }) else { return nil }
            self = key
        }

        init?(utf8 id: UnsafeBufferPointer<UInt8>) {
            guard id.count == 15 else { return nil }
            var seen: UInt8 = 0
            var high: UInt64 = 0
            for index in 0..<10 {
                let value = Self.sextets[Int(id[index])]
                seen |= value
                high = high << 6 | UInt64(value)
            }
            // The 11th character: four bits finish `high`, two start `low`.
            let middle = Self.sextets[Int(id[10])]
            var low = UInt32(middle & 0b11)
            high = high << 4 | UInt64(middle >> 2)
            for index in 11..<14 {
                let value = Self.sextets[Int(id[index])]
                seen |= value
                low = low << 6 | UInt32(value)
            }
            // The last character: four bits, and two that must be 0.
            let last = Self.sextets[Int(id[14])]
            seen |= middle | last | (last & 0b11) << 6
            guard seen & Self.invalid == 0 else { return nil }
            self.high = high
            self.low = low << 4 | UInt32(last >> 2)
        }

        /// Each byte's value as a base64url digit, or `invalid`.
        private static let invalid: UInt8 = 0xc0
        private static let sextets: [UInt8] = (0...255).map { byte in
            switch UInt8(byte) {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt8(byte) - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt8(byte) - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt8(byte) - UInt8(ascii: "0") + 52
            case UInt8(ascii: "-"): 62
            case UInt8(ascii: "_"): 63
            default: invalid
            }
        }
    }

    struct Entry: ProbingTableEntry {
        var high: UInt64
        /// The key's 24 bits, and `occupied` above them.
        var lowAndFlag: UInt32
        /// Unix seconds, clamped to `UInt32` (0 is long past, and
        /// `UInt32.max` is in 2106).
        var expiresAt: UInt32
        var userID: Int64

        static let occupied: UInt32 = 1 << 31

        init(_ key: Key, _ session: SessionSnapshot) {
            high = key.high
            lowAndFlag = key.low | Self.occupied
            expiresAt = UInt32(clamping: session.expiresAt)
            userID = session.userID
        }

        private init() {
            high = 0
            lowAndFlag = 0
            expiresAt = 0
            userID = 0
        }

        static var empty: Entry { Entry() }
        var isEmpty: Bool { lowAndFlag & Self.occupied == 0 }
        var key: Key { Key(high: high, low: lowAndFlag & ~Self.occupied) }
        static func hash(_ key: Key) -> UInt64 {
            // The bits are random already; both halves mixed with the seed
            // anyway, as ids may be imported.
            ProbingHash.mix(key.high ^ ProbingHash.mix(UInt64(key.low)))
        }

        var snapshot: SessionSnapshot { SessionSnapshot(userID: userID, expiresAt: Int64(expiresAt)) }
    }

    private var table: ProbingTable<Entry>
    private var others: [String: SessionSnapshot] = [:]
    /// Loaded entries waiting to go into `table` in one batch.
    private var pending: [Entry] = []

    init(expected: Int = 0) {
        table = ProbingTable(expected: expected)
    }

    var count: Int { table.count + others.count }

    func session(id: String) -> SessionSnapshot? {
        if let key = Key(id) {
            return table.index(of: key).map { table.entry(at: $0).snapshot }
        }
        return others[id]
    }

    mutating func insert(id: String, _ session: SessionSnapshot) {
        if let key = Key(id) {
            table.insert(Entry(key, session))
        } else {
            others[id] = session
        }
    }

    /// Adds a session from its id's UTF-8 bytes (a load straight from a
    /// database row); `finishLoading` must follow the last.
    mutating func load(id: UnsafeBufferPointer<UInt8>, _ session: SessionSnapshot) {
        guard let key = Key(utf8: id) else {
            others[String(decoding: id, as: UTF8.self)] = session
            return
        }
        if pending.isEmpty { pending.reserveCapacity(Self.batch) }
        pending.append(Entry(key, session))
        if pending.count == Self.batch { finishLoading() }
    }

    mutating func finishLoading() {
        guard !pending.isEmpty else { return }
        pending.withUnsafeBufferPointer { table.insert(batch: $0) }
        pending.removeAll(keepingCapacity: true)
    }

    /// Entries per `ProbingTable.insert(batch:)`.
    static let batch = 64

    mutating func setExpiry(id: String, _ expiresAt: Int64) {
        if let key = Key(id) {
            guard let index = table.index(of: key) else { return }
            var entry = table.entry(at: index)
            entry.expiresAt = UInt32(clamping: expiresAt)
            table.replace(at: index, with: entry)
        } else {
            others[id]?.expiresAt = expiresAt
        }
    }

    mutating func remove(id: String) {
        if let key = Key(id) {
            table.remove(key)
        } else {
            others.removeValue(forKey: id)
        }
    }

    /// Removes every session of `userID` but `keeping`: a scan (a few
    /// milliseconds per million sessions) instead of a per-user index,
    /// which would cost memory all the time; bulk revocations (logout_all,
    /// deactivation, password change) are rare.
    mutating func removeAll(userID: Int64, keeping: String?) {
        let kept = keeping.flatMap(Key.init)
        for key in table.keys(where: { $0.userID == userID && $0.key != kept }) { table.remove(key) }
        guard !others.isEmpty else { return }
        for (id, session) in others where session.userID == userID && id != keeping { others[id] = nil }
    }
}

extension SessionTable.Key {
    fileprivate init(high: UInt64, low: UInt32) {
        self.high = high
        self.low = low
    }
}
