import AuthCrypto
import Testing

@Suite struct PasswordHashingTests {
    let password = Array("correct horse battery".utf8)
    let smallArgon2 = Argon2id.Parameters(memoryKiB: 64, iterations: 1, parallelism: 1)

    @Test func everyStoredHashVerifiesWhateverTheConfiguredScheme() throws {
        let bcrypt = try PasswordHashing(scheme: .bcrypt, bcryptCost: 4).hash(password)
        let argon2 = try PasswordHashing(scheme: .argon2id, argon2: smallArgon2).hash(password)
        #expect(PasswordHashing.scheme(of: bcrypt) == .bcrypt)
        #expect(PasswordHashing.scheme(of: argon2) == .argon2id)
        for hash in [bcrypt, argon2] {
            #expect(PasswordHashing.verify(password, against: hash))
            #expect(!PasswordHashing.verify(Array("wrong".utf8), against: hash))
        }
        // Neither scheme's hash: nothing matches it.
        for foreign in ["", "plain", "$1$salt$hash", "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c"] {
            #expect(PasswordHashing.scheme(of: foreign) == nil)
            #expect(!PasswordHashing.verify(password, against: foreign))
        }
    }

    @Test func whatALoginReplaces() throws {
        let bcrypt10 = try PasswordHashing(scheme: .bcrypt, bcryptCost: 10).hash(password)
        let bcrypt4 = try PasswordHashing(scheme: .bcrypt, bcryptCost: 4).hash(password)
        let argon2 = try PasswordHashing(scheme: .argon2id, argon2: smallArgon2).hash(password)

        let bcryptAt10 = PasswordHashing(scheme: .bcrypt, bcryptCost: 10)
        #expect(!bcryptAt10.shouldReplace(bcrypt10))
        #expect(bcryptAt10.shouldReplace(bcrypt4))  // a cost raise
        #expect(!PasswordHashing(scheme: .bcrypt, bcryptCost: 4).shouldReplace(bcrypt10))  // never lowered
        #expect(bcryptAt10.shouldReplace(argon2))  // back from argon2id

        let argon2Here = PasswordHashing(scheme: .argon2id, argon2: smallArgon2)
        #expect(!argon2Here.shouldReplace(argon2))
        #expect(argon2Here.shouldReplace(bcrypt10))
        var moreMemory = argon2Here
        moreMemory.argon2.memoryKiB = 128
        #expect(moreMemory.shouldReplace(argon2))
        var lessMemory = argon2Here
        lessMemory.argon2.memoryKiB = 32
        #expect(lessMemory.shouldReplace(argon2))  // the configured parameters, whichever way
        #expect(!argon2Here.shouldReplace("not a hash"))
    }

    @Test func unmatchableHashesAreInTheConfiguredSchemeAndMatchNothing() throws {
        for hashing in [
            PasswordHashing(scheme: .bcrypt, bcryptCost: 4), PasswordHashing(scheme: .argon2id, argon2: smallArgon2),
        ] {
            let dummy = try hashing.unmatchableHash()
            #expect(PasswordHashing.scheme(of: dummy) == hashing.scheme)
            #expect(!PasswordHashing.verify(password, against: dummy))
            #expect(!PasswordHashing.verify([], against: dummy))
        }
    }
}
