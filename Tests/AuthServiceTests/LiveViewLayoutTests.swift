import AuthCore
import AuthCrypto
import Testing

@testable import AuthServiceCore

/// The live view's compact layout (`ProbingTable`, `UserTable`,
/// `SessionTable`) answers every lookup as a dictionary would, through
/// inserts, replacements, removals, growth, compaction and reloads.
@Suite struct LiveViewLayoutTests {
    /// An entry whose hash sends most keys to a few slots, so runs wrap
    /// around the end of the table and removals shift entries back across it.
    struct Crowded: ProbingTableEntry, Equatable {
        var key: Int64
        var value: Int64
        static var empty: Crowded { Crowded(key: -1, value: 0) }
        var isEmpty: Bool { key == -1 }
        static func hash(_ key: Int64) -> UInt64 { key % 3 == 0 ? UInt64.max : UInt64(key % 5) << 60 }
    }

    @Test func aProbingTableAgreesWithADictionaryThroughInsertsRemovalsAndGrowth() {
        var generator = SystemRandomNumberGenerator()
        var table = ProbingTable<Crowded>()
        var model: [Int64: Int64] = [:]
        for step in 0..<20_000 {
            let key = Int64.random(in: 0..<300, using: &generator)
            if Bool.random(using: &generator) || step < 200 {
                let old = table.insert(Crowded(key: key, value: Int64(step)))
                #expect(old?.value == model[key])
                model[key] = Int64(step)
            } else {
                #expect(table.remove(key)?.value == model.removeValue(forKey: key))
            }
            if step % 97 == 0 {
                for probe in Int64(0)..<300 {
                    #expect(table.index(of: probe).map { table.entry(at: $0).value } == model[probe])
                }
            }
        }
        #expect(table.count == model.count)
        var seen: [Int64: Int64] = [:]
        table.forEach { seen[$0.key] = $0.value }
        #expect(seen == model)
        #expect(table.capacity * 7 >= table.count * 8)
    }

    @Test func aDaemonMadeSessionIdIsItsEightyEightBitsAndNothingElseIs() throws {
        var keys: [SessionTable.Key] = []
        for _ in 0..<1_000 {
            let bytes = SecureRandom.bytes(11)
            let id = Base64URL.encode(bytes)
            let key = try #require(SessionTable.Key(id))
            // The key is the bytes, big-endian: 8 in `high`, 3 in `low`.
            #expect(key.high == bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) })
            #expect(key.low == bytes[8..<11].reduce(0) { $0 << 8 | UInt32($1) })
            keys.append(key)
        }
        #expect(Set(keys.map { "\($0.high)-\($0.low)" }).count == keys.count)
        // Not 15 base64url characters, or bits past the 88th set.
        for other in ["", "AAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAB", "AAAAAAAAAAAAA+A", "seed-0-1"] {
            #expect(SessionTable.Key(other) == nil, "\(other)")
        }
        #expect(SessionTable.Key("AAAAAAAAAAAAAAE") != nil)
    }

    @Test func theViewAgreesWithDictionariesThroughRandomChanges() {
        var generator = SystemRandomNumberGenerator()
        let view = LiveView()
        var users: [Int64: UserSnapshot] = [:]
        var sessions: [String: SessionSnapshot] = [:]
        // Daemon-made ids and others (imported, the seed's).
        let sessionIDs =
            (0..<150).map { _ in SecureRandom.identifier(byteCount: 11) } + (0..<50).map { "imported-\($0)" }
        let roles = ["user", "admin", "auditor"]
        for step in 0..<30_000 {
            let userID = Int64.random(in: 1...120, using: &generator)
            let sessionID = sessionIDs.randomElement(using: &generator)!
            let change: LiveView.Change
            switch Int.random(in: 0..<10, using: &generator) {
            case 0, 1:
                let user = UserSnapshot(
                    id: userID, email: "u\(userID)-\(step % 7)@example.com", role: roles.randomElement()!,
                    active: Bool.random(using: &generator), createdAt: Int64(step))
                change = .upsertUser(user)
                users[userID] = user
            case 2:
                change = .deleteUser(userID)
                users[userID] = nil
                sessions = sessions.filter { $0.value.userID != userID }
            case 3, 4, 5:
                let session = SessionSnapshot(userID: userID, expiresAt: 1_700_000_000 + Int64(step))
                change = .addSession(id: sessionID, session)
                sessions[sessionID] = session
            case 6:
                change = .extendSession(id: sessionID, expiresAt: 1_800_000_000 + Int64(step))
                sessions[sessionID]?.expiresAt = 1_800_000_000 + Int64(step)
            case 7, 8:
                change = .removeSession(id: sessionID)
                sessions[sessionID] = nil
            default:
                let keeping = Bool.random(using: &generator) ? sessionID : nil
                change = .removeSessions(userID: userID, keeping: keeping)
                sessions = sessions.filter { $0.value.userID != userID || $0.key == keeping }
            }
            view.apply([change])
            if step % 500 == 0 || step == 29_999 {
                for id in Int64(1)...120 { #expect(view.user(id: id) == users[id]) }
                for id in sessionIDs { #expect(view.session(id: id) == sessions[id]) }
                #expect(view.counts.users == users.count)
                #expect(view.counts.sessions == sessions.count)
            }
        }
    }

    @Test func emailsChangedOverAndOverAreCompactedAndEveryUserStillReadsBack() {
        let view = LiveView()
        let long = String(repeating: "x", count: 200)
        // 6,000 users x 3 emails of ~220 bytes: ~2.6 MiB of replaced text,
        // past the point where the text is rewritten.
        for round in 0..<3 {
            view.apply(
                (1...6_000).map {
                    .upsertUser(
                        UserSnapshot(
                            id: $0, email: "\(long)\(round)-\($0)@example.com", role: "user", active: true,
                            createdAt: Int64(round)))
                })
        }
        view.apply((1...3_000).map { .deleteUser(Int64($0 * 2)) })
        for id in Int64(1)...6_000 {
            let expected =
                id % 2 == 0
                ? nil
                : UserSnapshot(id: id, email: "\(long)2-\(id)@example.com", role: "user", active: true, createdAt: 2)
            #expect(view.user(id: id) == expected)
        }
        #expect(view.counts.users == 3_000)
    }

    @Test func anEmailTooLongForAnEntryIsKeptWhole() {
        let view = LiveView()
        let huge = String(repeating: "a", count: 70_000) + "@example.com"
        let role = String(repeating: "r", count: 300)
        view.apply([
            .upsertUser(UserSnapshot(id: 7, email: huge, role: "user", active: true, createdAt: 1)),
            .upsertUser(UserSnapshot(id: 8, email: "b@example.com", role: role, active: false, createdAt: 2)),
        ])
        #expect(view.user(id: 7)?.email == huge)
        #expect(view.user(id: 8)?.role == role)
        view.apply([
            .upsertUser(UserSnapshot(id: 7, email: "short@example.com", role: "user", active: true, createdAt: 1))
        ])
        #expect(view.user(id: 7)?.email == "short@example.com")
        view.apply([.deleteUser(8)])
        #expect(view.user(id: 8) == nil)
        #expect(view.counts.users == 1)
    }

    @Test func aLoadReplacesTheWholeViewFromSnapshotsAndRowBytes() {
        let view = LiveView()
        view.apply([
            .upsertUser(UserSnapshot(id: 1, email: "old@example.com", role: "user", active: true, createdAt: 1)),
            .addSession(id: "old-session", SessionSnapshot(userID: 1, expiresAt: 10)),
        ])
        let id = SecureRandom.identifier(byteCount: 11)
        view.load(userCount: 2, sessionCount: 2) { loader in
            loader.addUser(UserSnapshot(id: 2, email: "two@example.com", role: "admin", active: true, createdAt: 5))
            var email = "three@example.com"
            var role = "user"
            email.withUTF8 { email in
                role.withUTF8 { role in
                    loader.addUser(id: 3, email: email, role: role, active: false, createdAt: 6)
                }
            }
            loader.addSession(id: id, SessionSnapshot(userID: 2, expiresAt: 20))
            // Expiries outside unix seconds in 32 bits are clamped: past is past.
            loader.addSession(id: "other", SessionSnapshot(userID: 3, expiresAt: -5))
        }
        #expect(view.user(id: 1) == nil)
        #expect(view.session(id: "old-session") == nil)
        #expect(
            view.user(id: 2) == UserSnapshot(id: 2, email: "two@example.com", role: "admin", active: true, createdAt: 5)
        )
        #expect(
            view.user(id: 3)
                == UserSnapshot(id: 3, email: "three@example.com", role: "user", active: false, createdAt: 6))
        #expect(view.session(id: id) == SessionSnapshot(userID: 2, expiresAt: 20))
        #expect(view.session(id: "other")?.expiresAt == -5)
        view.apply([.addSession(id: id, SessionSnapshot(userID: 2, expiresAt: -5))])
        #expect(view.session(id: id)?.expiresAt == 0)
        #expect(view.counts == (2, 2))
    }

    @Test func batchInsertsAgreeWithADictionaryAcrossBatchesDuplicatesAndGrowth() {
        var generator = SystemRandomNumberGenerator()
        var table = ProbingTable<Crowded>(expected: 4)
        var model: [Int64: Int64] = [:]
        for round in 0..<40 {
            // Batches of up to 100 with repeated keys, into a table that must grow.
            let batch = (0..<Int.random(in: 1...100, using: &generator)).map { _ in
                Crowded(key: Int64.random(in: 0..<2_000, using: &generator), value: Int64(round))
            }
            batch.withUnsafeBufferPointer { table.insert(batch: $0) }
            for entry in batch { model[entry.key] = entry.value }
            for key in model.keys.shuffled().prefix(10) {
                #expect(table.remove(key)?.value == model.removeValue(forKey: key))
            }
        }
        #expect(table.count == model.count)
        for key in Int64(0)..<2_000 {
            #expect(table.index(of: key).map { table.entry(at: $0).value } == model[key])
        }
    }

    @Test func aLoadLargerThanItsCountsFillsEveryBatchAndStaysConsistentAfter() {
        let view = LiveView()
        let ids = (0..<5_000).map { _ in SecureRandom.identifier(byteCount: 11) }
        // Counts far too small: the tables grow while batches go in.
        view.load(userCount: 10, sessionCount: 10) { loader in
            for user in Int64(1)...3_001 {
                loader.addUser(
                    UserSnapshot(id: user, email: "l\(user)@example.com", role: "user", active: true, createdAt: user))
            }
            for (index, id) in ids.enumerated() {
                loader.addSession(id: id, SessionSnapshot(userID: Int64(index % 3_001 + 1), expiresAt: Int64(index)))
            }
        }
        #expect(view.counts == (3_001, 5_000))
        view.apply(ids.prefix(2_500).map { .removeSession(id: $0) })
        view.apply([.extendSession(id: ids[4_999], expiresAt: Int64(UInt32.max) + 10)])
        view.apply([.removeSessions(userID: 1, keeping: nil), .deleteUser(2)])
        for (index, id) in ids.enumerated() {
            let user = Int64(index % 3_001 + 1)
            let expected: SessionSnapshot? =
                index < 2_500 || user == 1 || user == 2
                ? nil
                : SessionSnapshot(userID: user, expiresAt: index == 4_999 ? Int64(UInt32.max) : Int64(index))
            #expect(view.session(id: id) == expected)
        }
        #expect(view.user(id: 2) == nil)
        #expect(view.user(id: 3_001)?.email == "l3001@example.com")
    }

    @Test func aUserLoadedTwiceInEitherLayoutIsTheLastOneLoaded() {
        let huge = String(repeating: "h", count: 70_000) + "@example.com"
        for (first, second) in [("a@example.com", huge), (huge, "a@example.com")] {
            let view = LiveView()
            view.load(userCount: 1, sessionCount: 0) { loader in
                loader.addUser(UserSnapshot(id: 1, email: first, role: "user", active: true, createdAt: 1))
                loader.addUser(UserSnapshot(id: 1, email: second, role: "user", active: true, createdAt: 2))
            }
            // Compared apart: a failure would print 70,000 bytes.
            let isSecond = view.user(id: 1)?.email == second
            #expect(isSecond)
            #expect(view.user(id: 1)?.createdAt == 2)
            #expect(view.counts.users == 1)
            view.apply([.deleteUser(1)])
            #expect(view.user(id: 1) == nil)
            #expect(view.counts.users == 0)
        }
    }

    @Test func idsWithBytesOutsideBase64URLAreNotPacked() {
        for id in ["AAAAAAAAAAAAA=A", "AAAAAAAAAAAAA.A", "AAAAAAAAAAAA\u{e9}A", "AAAAAAAAAAAAA A"] {
            #expect(SessionTable.Key(id) == nil, "\(id)")
        }
        let view = LiveView()
        view.apply([.addSession(id: "AAAAAAAAAAAAA=A", SessionSnapshot(userID: 1, expiresAt: 5))])
        #expect(view.session(id: "AAAAAAAAAAAAA=A") == SessionSnapshot(userID: 1, expiresAt: 5))
        #expect(view.session(id: "AAAAAAAAAAAAAAA") == nil)
    }
}
