import AuthCrypto
import Foundation
import Testing

@Suite struct HashMemoryBudgetTests {
    /// Hashes running at once never hold more than the budget, and all of
    /// them run; one needing more than the whole budget is refused.
    @Test func concurrentReservationsStayUnderTheLimit() throws {
        let budget = HashMemoryBudget(limitKiB: 1_000)
        let peak = Locked(0)
        let group = DispatchGroup()
        let done = Locked(0)
        for index in 0..<40 {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                try? budget.withReservation(kib: 300 + index % 3 * 100) {
                    peak.withLock { $0 = max($0, budget.held) }
                    usleep(500)
                    done.withLock { $0 += 1 }
                }
            }
        }
        #expect(group.wait(timeout: .now() + 30) == .success)
        #expect(done.withLock { $0 } == 40)
        #expect(peak.withLock { $0 } <= 1_000)
        #expect(budget.held == 0)
        #expect(throws: HashMemoryBudget.Exceeded.self) { try budget.withReservation(kib: 1_001) {} }
        #expect(!budget.admits(kib: 1_001) && budget.admits(kib: 1_000))
    }

    /// A stored hash needing more than the budget is not verifiable, and a
    /// raw hash over it is refused rather than run.
    @Test func argon2idReservesItsMemory() throws {
        let small = HashMemoryBudget(limitKiB: 100)
        let parameters = Argon2id.Parameters(memoryKiB: 128, iterations: 1, parallelism: 1)
        #expect(throws: HashMemoryBudget.Exceeded.self) {
            try Argon2id.raw(
                password: [1], salt: [UInt8](repeating: 2, count: 16), parameters: parameters, tagBytes: 32,
                budget: small)
        }
        let hash = try Argon2id.hash(Array("password".utf8), parameters: parameters)
        #expect(Argon2id.isVerifiable(hash))
        #expect(!Argon2id.isVerifiable(hash, budget: small))
    }

    @Test func onlyWellFormedHashesAreVerifiable() throws {
        let bcrypt = try Bcrypt.hash(Array("password".utf8), cost: 4)
        #expect(PasswordHashing.isVerifiable(bcrypt))
        #expect(!PasswordHashing.isVerifiable(String(bcrypt.dropLast())))
        #expect(!PasswordHashing.isVerifiable(String(bcrypt.dropLast()) + "!"))
        #expect(!PasswordHashing.isVerifiable("$2b$03$" + String(bcrypt.dropFirst(7))))
        #expect(!PasswordHashing.isVerifiable("$2x$04$" + String(bcrypt.dropFirst(7))))
        #expect(!PasswordHashing.isVerifiable("$6$salt$hash"))
        #expect(!PasswordHashing.isVerifiable("!"))
        let tooBig = "$argon2id$v=19$m=2097152,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
        #expect(!PasswordHashing.isVerifiable(tooBig))
        // bcrypt refuses what it would cut.
        #expect(throws: Bcrypt.Failure.self) { try Bcrypt.hash([UInt8](repeating: 97, count: 73), cost: 4) }
    }
}

/// A value behind a lock, for the tests' threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
