import AuthCore

/// The live view's users: a `ProbingTable` of 24-byte entries keyed by id,
/// with every email and role in one byte array (`text`) instead of a
/// `String` each (a 20-byte email is a heap allocation of its own as a
/// `String`). About 50 bytes a user with a 20-byte email, where a
/// `Dictionary` of `UserSnapshot` took about 150.
struct UserTable {
    /// A user: the id, creation time and active flag, and where its email
    /// and role (right after the email) are in `text`.
    struct Entry: ProbingTableEntry {
        var id: Int64
        var createdAt: Int64
        var textOffset: UInt32
        var emailLength: UInt16
        var roleLength: UInt8
        /// `occupied`, `active`.
        var flags: UInt8

        static let occupied: UInt8 = 1
        static let active: UInt8 = 2

        static var empty: Entry { Entry(id: 0, createdAt: 0, textOffset: 0, emailLength: 0, roleLength: 0, flags: 0) }
        var isEmpty: Bool { flags & Self.occupied == 0 }
        var key: Int64 { id }
        static func hash(_ key: Int64) -> UInt64 { ProbingHash.mix(UInt64(bitPattern: key)) }

        var textLength: Int { Int(emailLength) + Int(roleLength) }
    }

    private var table: ProbingTable<Entry>
    /// Emails and roles, each user's email then role.
    private var text: [UInt8] = []
    /// Bytes of `text` no entry refers to any more (replaced, removed).
    private var unused = 0
    /// Users whose email or role is too long for an entry's lengths (no
    /// rule-abiding user: emails are at most 254 bytes, roles 32).
    private var oversized: [Int64: UserSnapshot] = [:]
    /// Loaded entries waiting to go into `table` in one batch.
    private var pending: [Entry] = []

    /// Room for `expected` users; their text is reserved at 32 bytes each
    /// (the pages of a reservation take memory only once written).
    init(expected: Int = 0) {
        table = ProbingTable(expected: expected)
        text.reserveCapacity(expected * 32)
    }

    var count: Int { table.count + oversized.count }

    func user(id: Int64) -> UserSnapshot? {
        guard let index = table.index(of: id) else { return oversized.isEmpty ? nil : oversized[id] }
        return snapshot(table.entry(at: index))
    }

    mutating func upsert(_ user: UserSnapshot) {
        Self.withText(of: user) {
            upsert(id: user.id, email: $0, role: $1, active: user.active, createdAt: user.createdAt)
        }
    }

    /// `user`'s email and role as UTF-8 bytes, for the byte-taking calls.
    static func withText<Result>(
        of user: UserSnapshot, _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Result
    ) -> Result {
        var (email, role) = (user.email, user.role)
        return email.withUTF8 { email in role.withUTF8 { role in body(email, role) } }
    }

    /// Stores a user from its email's and role's UTF-8 bytes (a load
    /// straight from a database row, with no `String` in between).
    mutating func upsert(
        id: Int64, email: UnsafeBufferPointer<UInt8>, role: UnsafeBufferPointer<UInt8>, active: Bool, createdAt: Int64
    ) {
        guard email.count <= UInt16.max, role.count <= UInt8.max else {
            if let old = table.remove(id) { unused += old.textLength }
            // `upsert(_:)` keeps the whole snapshot; a raw load sees none.
            oversized[id] = UserSnapshot(
                id: id, email: String(decoding: email, as: UTF8.self), role: String(decoding: role, as: UTF8.self),
                active: active, createdAt: createdAt)
            return
        }
        if !oversized.isEmpty { oversized[id] = nil }
        var entry = Entry(
            id: id, createdAt: createdAt, textOffset: 0, emailLength: UInt16(email.count),
            roleLength: UInt8(role.count), flags: Entry.occupied | (active ? Entry.active : 0))
        if let index = table.index(of: id) {
            let old = table.entry(at: index)
            if textMatches(old, email: email, role: role) {
                entry.textOffset = old.textOffset
                table.replace(at: index, with: entry)
                return
            }
            unused += old.textLength
            entry.textOffset = append(email, role)
            table.replace(at: index, with: entry)
        } else {
            entry.textOffset = append(email, role)
            table.insert(entry)
        }
        compactIfMostlyUnused()
    }

    /// Adds a user of a load (ids unique, as in the database it comes
    /// from) from its email's and role's UTF-8 bytes; `finishLoading` must
    /// follow the last.
    mutating func load(
        id: Int64, email: UnsafeBufferPointer<UInt8>, role: UnsafeBufferPointer<UInt8>, active: Bool, createdAt: Int64
    ) {
        guard email.count <= UInt16.max, role.count <= UInt8.max else {
            // `upsert` must see every entry loaded so far.
            finishLoading()
            return upsert(id: id, email: email, role: role, active: active, createdAt: createdAt)
        }
        if !oversized.isEmpty { oversized[id] = nil }
        // Before the entry joins `pending`: appending may compact, which
        // empties it first.
        let offset = append(email, role)
        if pending.isEmpty { pending.reserveCapacity(SessionTable.batch) }
        pending.append(
            Entry(
                id: id, createdAt: createdAt, textOffset: offset, emailLength: UInt16(email.count),
                roleLength: UInt8(role.count), flags: Entry.occupied | (active ? Entry.active : 0)))
        if pending.count == SessionTable.batch { finishLoading() }
    }

    /// Moves the loaded entries waiting into the table. (Ids are unique in
    /// a load; a repeated one replaces the first, whose text is then
    /// unused without being counted as such.)
    mutating func finishLoading() {
        guard !pending.isEmpty else { return }
        pending.withUnsafeBufferPointer { table.insert(batch: $0) }
        pending.removeAll(keepingCapacity: true)
    }

    @discardableResult
    mutating func remove(id: Int64) -> Bool {
        if let old = table.remove(id) {
            unused += old.textLength
            compactIfMostlyUnused()
            return true
        }
        return oversized.removeValue(forKey: id) != nil
    }

    private func snapshot(_ entry: Entry) -> UserSnapshot {
        text.withUnsafeBufferPointer { text in
            let start = Int(entry.textOffset)
            let roleStart = start + Int(entry.emailLength)
            return UserSnapshot(
                id: entry.id,
                email: String(decoding: UnsafeBufferPointer(rebasing: text[start..<roleStart]), as: UTF8.self),
                role: String(
                    decoding: UnsafeBufferPointer(rebasing: text[roleStart..<roleStart + Int(entry.roleLength)]),
                    as: UTF8.self),
                active: entry.flags & Entry.active != 0, createdAt: entry.createdAt)
        }
    }

    private func textMatches(_ entry: Entry, email: UnsafeBufferPointer<UInt8>, role: UnsafeBufferPointer<UInt8>)
        -> Bool
    {
        guard Int(entry.emailLength) == email.count, Int(entry.roleLength) == role.count else { return false }
        let start = Int(entry.textOffset)
        return text[start..<start + email.count].elementsEqual(email)
            && text[start + email.count..<start + email.count + role.count].elementsEqual(role)
    }

    private mutating func append(_ email: UnsafeBufferPointer<UInt8>, _ role: UnsafeBufferPointer<UInt8>) -> UInt32 {
        if text.count + email.count + role.count > UInt32.max { compact() }
        precondition(text.count + email.count + role.count <= UInt32.max, "more than 4 GiB of emails and roles")
        let offset = UInt32(text.count)
        text.append(contentsOf: email)
        text.append(contentsOf: role)
        return offset
    }

    /// Rewrites `text` without its unused bytes once they are most of it
    /// (and more than a mebibyte): email changes and removals are rare, so
    /// this is rare too, and its cost is that of the changes that led to it.
    private mutating func compactIfMostlyUnused() {
        if unused > 1 << 20 && unused * 2 > text.count { compact() }
    }

    private mutating func compact() {
        // Entries of a load still waiting point into `text` too.
        finishLoading()
        var compacted: [UInt8] = []
        compacted.reserveCapacity(text.count - unused)
        let old = text
        table.updateEach { entry in
            let start = Int(entry.textOffset)
            entry.textOffset = UInt32(compacted.count)
            compacted.append(contentsOf: old[start..<start + entry.textLength])
        }
        text = compacted
        unused = 0
    }
}
