/// What `ProbingTable` stores: a fixed-size value that carries its own key
/// and can say whether its slot is empty.
protocol ProbingTableEntry {
    associatedtype Key: Equatable
    /// The value of an empty slot.
    static var empty: Self { get }
    var isEmpty: Bool { get }
    var key: Key { get }
    /// A well-mixed hash of `key` (every bit may matter: the table uses the
    /// high bits of a multiplication).
    static func hash(_ key: Key) -> UInt64
}

/// A hash table of fixed-size entries in one contiguous array, for the
/// live view's millions of users and sessions: open addressing with linear
/// probing, and deletion by shifting the entries behind back (no
/// tombstones, so lookups never slow down with churn).
///
/// Compared with a `Dictionary` of structs, an entry costs its own size
/// over a load of at most 7/8 (a `Dictionary` rounds its buckets up to a
/// power of two, so a million entries take two million buckets), and a
/// lookup reads neighbouring slots in one array.
struct ProbingTable<Entry: ProbingTableEntry> {
    private var slots: [Entry]
    private(set) var count = 0

    /// Room for `expected` entries at a load of 3/4.
    init(expected: Int = 0) {
        slots = Array(repeating: .empty, count: Self.slotCount(for: expected))
    }

    var capacity: Int { slots.count }

    private static func slotCount(for entries: Int) -> Int { max(8, entries + entries / 3 + 1) }

    /// Where `hash`'s probe sequence starts: the high half of
    /// `hash * capacity` (any capacity, no power of two needed).
    private func home(_ hash: UInt64) -> Int {
        Int(truncatingIfNeeded: hash.multipliedFullWidth(by: UInt64(slots.count)).high)
    }

    private func next(_ index: Int) -> Int { index + 1 == slots.count ? 0 : index + 1 }

    /// The slot holding `key`, if any.
    func index(of key: Entry.Key) -> Int? {
        var index = home(Entry.hash(key))
        while true {
            let slot = slots[index]
            if slot.isEmpty { return nil }
            if slot.key == key { return index }
            index = next(index)
        }
    }

    func entry(at index: Int) -> Entry { slots[index] }

    /// Replaces the entry at `index` by one with the same key.
    mutating func replace(at index: Int, with entry: Entry) {
        assert(entry.key == slots[index].key)
        slots[index] = entry
    }

    /// Stores `entry`, replacing the one with its key; returns that one.
    @discardableResult
    mutating func insert(_ entry: Entry) -> Entry? {
        if (count + 1) * 8 > slots.count * 7 { grow(toHold: count + 1) }
        var index = home(Entry.hash(entry.key))
        while !slots[index].isEmpty {
            if slots[index].key == entry.key {
                defer { slots[index] = entry }
                return slots[index]
            }
            index = next(index)
        }
        slots[index] = entry
        count += 1
        return nil
    }

    /// Stores `batch` (a load), each entry replacing any with its key. It
    /// reads every entry's home slot before storing any: the CPU fetches
    /// those cache lines together instead of missing on one after another,
    /// which halves the time a million random keys take to load.
    mutating func insert(batch: UnsafeBufferPointer<Entry>) {
        if (count + batch.count) * 8 > slots.count * 7 { grow(toHold: count + batch.count) }
        withUnsafeTemporaryAllocation(of: (index: Int, free: Bool).self, capacity: batch.count) { homes in
            for (position, entry) in batch.enumerated() {
                let index = home(Entry.hash(entry.key))
                homes[position] = (index, slots[index].isEmpty)
            }
            for (position, entry) in batch.enumerated() {
                // An earlier entry of the batch may have taken the slot since.
                let (index, free) = homes[position]
                if free && slots[index].isEmpty {
                    slots[index] = entry
                    count += 1
                } else {
                    insert(entry)
                }
            }
        }
    }

    /// Removes and returns the entry with `key`.
    @discardableResult
    mutating func remove(_ key: Entry.Key) -> Entry? {
        guard let index = index(of: key) else { return nil }
        return remove(at: index)
    }

    /// Removes the entry at `index`, then moves back each entry after it
    /// in the run that the hole would cut off from its home slot.
    @discardableResult
    mutating func remove(at index: Int) -> Entry {
        let removed = slots[index]
        var hole = index
        var probe = next(index)
        while !slots[probe].isEmpty {
            let home = home(Entry.hash(slots[probe].key))
            // The entry may fill the hole if its home is not in (hole, probe],
            // cyclically: it would otherwise be unreachable from its home.
            let reachable = hole <= probe ? (home > hole && home <= probe) : (home > hole || home <= probe)
            if !reachable {
                slots[hole] = slots[probe]
                hole = probe
            }
            probe = next(probe)
        }
        slots[hole] = .empty
        count -= 1
        return removed
    }

    /// Every entry, in slot order.
    func forEach(_ body: (Entry) throws -> Void) rethrows {
        for slot in slots where !slot.isEmpty { try body(slot) }
    }

    /// Changes every entry in place; `body` must keep each one's key.
    mutating func updateEach(_ body: (inout Entry) -> Void) {
        for index in slots.indices where !slots[index].isEmpty {
            body(&slots[index])
            assert(!slots[index].isEmpty)
        }
    }

    /// The keys of the entries `isIncluded` accepts.
    func keys(where isIncluded: (Entry) -> Bool) -> [Entry.Key] {
        var keys: [Entry.Key] = []
        for slot in slots where !slot.isEmpty && isIncluded(slot) { keys.append(slot.key) }
        return keys
    }

    /// Room for twice `entries`, rehashed.
    private mutating func grow(toHold entries: Int) {
        var larger = ProbingTable(expected: entries * 2)
        for slot in slots where !slot.isEmpty {
            var index = larger.home(Entry.hash(slot.key))
            while !larger.slots[index].isEmpty { index = larger.next(index) }
            larger.slots[index] = slot
        }
        larger.count = count
        self = larger
    }
}

/// Hashing for `ProbingTableEntry.hash`.
enum ProbingHash {
    /// The splitmix64 finalizer over `value` and a per-process seed: user
    /// ids are sequential and a probing table needs their bits spread.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value ^ Self.hashSeed
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Chosen at start, so no stored key set collides on purpose.
    private static let hashSeed = UInt64.random(in: .min ... .max)
}
