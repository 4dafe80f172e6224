import AuthCore
import AuthCrypto
import AuthServiceCore
import Foundation
import NIOConcurrencyHelpers

/// The access and refresh signing keys: where they come from, rotation of
/// the access key, and persistence of rotated keys in `STATE_DIR/keys/`.
///
/// HS256 (the default): `$CREDENTIALS_DIRECTORY/{access-key,refresh-key}`
/// (one trailing newline removed), then `JWT_SECRET`/`JWT_REFRESH_SECRET`,
/// then keys generated once into `STATE_DIR/keys/` with mode 0600.
/// EdDSA: the access key is Ed25519, from the credential `access-key.pem`
/// (PKCS#8) or generated into `STATE_DIR/keys/access-key.pem`; refresh
/// tokens stay HS256 with the refresh secret. Error messages name the
/// problem, never a secret.
///
/// On a shared database (PostgreSQL) the keys live in the database instead
/// (`SharedKeyring`): keys given to this host must be those given to every
/// other, keys not given are generated once into the database, sealed, and
/// a rotation on any host reaches this one through the change feed.
public final class KeyStore: KeyProvider, @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static let minimumSecretBytes = 32

    let keysDirectory: String
    let credentialsDirectory: String?
    let environment: [String: String]
    let lock = NIOLock()
    private var access: KeySet
    private var refresh: KeySet
    var algorithm: SigningAlgorithm
    public private(set) var source: String
    private let shared: SharedKeyring?
    /// With a shared database: the keys this host was given, and the
    /// retention of the last reload (for rotations arriving by the feed).
    private var given = SharedKeyring.Given()
    private var retention: Int64 = 0
    /// The generation of the shared keys the sets were built from: an older
    /// snapshot (a feed read that began before a local rotation committed)
    /// never replaces them.
    private var sharedGeneration: Int64 = -1
    /// Held by whoever reads shared keys and builds sets from them (reload,
    /// rotation, the feed), so that they take turns; token checks take only
    /// `lock`, never this one.
    private let adopting = NSLock()

    /// The keyring file: rotated access keys with their lifetimes.
    private var ringPath: String {
        keysDirectory + (algorithm == .eddsa ? "/access-keyring-eddsa.json" : "/access-keyring.json")
    }

    /// The store before any key is read: `reload` (or `keysToMove`) reads them.
    init(
        keysDirectory: String, credentialsDirectory: String?, environment: [String: String],
        algorithm: SigningAlgorithm, shared: SharedKeyring? = nil
    ) {
        self.keysDirectory = keysDirectory
        self.credentialsDirectory = credentialsDirectory
        self.environment = environment
        self.algorithm = algorithm
        let placeholder = SigningKey(secret: [0])
        self.access = KeySet(current: placeholder)
        self.refresh = KeySet(current: placeholder)
        self.source = ""
        self.shared = shared
    }

    public convenience init(
        stateDirectory: String, credentialsDirectory: String?, environment: [String: String], now: Int64,
        retention: Int64, algorithm: SigningAlgorithm = .hs256, shared: SharedKeyring? = nil
    ) throws {
        self.init(
            keysDirectory: stateDirectory + "/keys", credentialsDirectory: credentialsDirectory,
            environment: environment, algorithm: algorithm, shared: shared)
        try reload(now: now, retention: retention, algorithm: algorithm)
        // Another host's rotation. Keys that cannot be used here (the
        // start-up checks make that a database changed behind authd's back)
        // leave the previous ones in place, and the feed logs it.
        shared?.store.onSigningKeysChanged { [weak self] snapshot in
            guard let self else { return true }
            self.adopting.lock()
            defer { self.adopting.unlock() }
            return (try? self.adoptShared(snapshot, now: WallClock.unixSeconds())) != nil
        }
    }

    public var accessKeys: KeySet { lock.withLock { access } }
    public var refreshKeys: KeySet { lock.withLock { refresh } }

    /// Reads the keys again (start-up and SIGHUP). `retention` is how long a
    /// retired access key keeps verifying (access TTL + leeway).
    public func reload(now: Int64, retention: Int64, algorithm: SigningAlgorithm) throws {
        if let shared {
            // The database is asked outside `lock`: token checks read the key
            // sets meanwhile. Nothing changes unless all of it succeeds.
            adopting.lock()
            defer { adopting.unlock() }
            let (given, source) = try givenKeys(for: algorithm)
            let snapshot = try shared.start(given: given, algorithm: algorithm, now: now)
            let sets = try shared.keySets(
                snapshot.keys, given: given, algorithm: algorithm, now: now, retention: retention)
            lock.withLock {
                (self.given, self.retention, self.source, self.algorithm) = (given, retention, source, algorithm)
                (access, refresh) = sets
                sharedGeneration = max(sharedGeneration, snapshot.generation)
            }
            return
        }
        try lock.withLock {
            self.algorithm = algorithm
            try ensureKeysDirectory()
            let (base, refreshSecret, source) = try loadSources()
            var ring = try readRing()
            if !ring.entries.contains(where: { $0.kid == base.kid }) {
                // A base key the ring has not seen is newer than the ring: it signs.
                for index in ring.entries.indices where ring.entries[index].retiredAt == nil {
                    ring.entries[index].retiredAt = now
                }
                ring.entries.append(.init(kid: base.kid, secret: nil, createdAt: now, retiredAt: nil))
                try writeRing(ring)
            }
            self.access = try keySets(ring: ring, base: base, now: now, retention: retention)
            self.refresh = KeySet(current: SigningKey(secret: refreshSecret))
            self.source = source
        }
    }

    /// Generates a new access key, makes it the signing key and retires the
    /// old one (which keeps verifying for `retention` seconds).
    public func rotate(now: Int64, retention: Int64) throws -> String {
        if let shared {
            adopting.lock()
            defer { adopting.unlock() }
            let (kid, snapshot) = try shared.rotate(
                algorithm: lock.withLock { algorithm }, now: now, retention: retention)
            // Committed, so in use on every host from now: were the sets not
            // to build here, the feed tries again and logs why.
            try? adoptShared(snapshot, now: now)
            return kid
        }
        return try lock.withLock {
            var ring = try readRing()
            let secret = Base64URL.encode(SecureRandom.bytes(32))
            let key = try makeKey(secret: secret, retiredAt: nil)
            for index in ring.entries.indices where ring.entries[index].retiredAt == nil {
                ring.entries[index].retiredAt = now
            }
            ring.entries.append(.init(kid: key.kid, secret: secret, createdAt: now, retiredAt: nil))
            ring.entries.removeAll {
                !KeyRetention.stillVerifies(retiredAt: $0.retiredAt, retention: retention, now: now)
            }
            try writeRing(ring)
            access = try keySets(ring: ring, base: try loadSources().access, now: now, retention: retention)
            return key.kid
        }
    }

    /// Public JWKs of the access keys that may still verify a live token
    /// (empty with HS256).
    public func publicJWKs(now: Int64, retention: Int64) -> [JSONValue] {
        accessKeys.all.filter { KeyRetention.stillVerifies(retiredAt: $0.retiredAt, retention: retention, now: now) }
            .compactMap(\.publicJWK)
    }

    /// Takes the shared database's keys of `snapshot`, unless the sets were
    /// built from a newer one. The caller holds `adopting`.
    private func adoptShared(_ snapshot: SharedKeySnapshot, now: Int64) throws {
        guard let shared else { return }
        let (given, algorithm, retention, applied) = lock.withLock {
            (self.given, self.algorithm, self.retention, self.sharedGeneration)
        }
        guard snapshot.generation >= applied else { return }
        let sets = try shared.keySets(
            snapshot.keys, given: given, algorithm: algorithm, now: now, retention: retention)
        lock.withLock {
            (access, refresh) = sets
            sharedGeneration = snapshot.generation
        }
    }

    /// The keys given to this host by credentials or environment (with a
    /// shared database nothing is generated into the state directory), and
    /// a description of where they came from.
    func givenKeys(for algorithm: SigningAlgorithm) throws -> (SharedKeyring.Given, String) {
        let generatedNote = "generated into the shared database, sealed"
        if algorithm == .hs256 {
            guard let (access, refresh, source) = try loadSecrets(generate: false) else {
                return (SharedKeyring.Given(), "keys \(generatedNote)")
            }
            try checkHS256(access: access, refresh: refresh, source: source)
            return (SharedKeyring.Given(access: SigningKey(secret: access), refresh: refresh), source)
        }
        var given = SharedKeyring.Given()
        var source = "an Ed25519 key \(generatedNote)"
        if let directory = credentialsDirectory, let pem = readCredential(directory + "/access-key.pem") {
            do {
                given.access = SigningKey(ed25519: try Ed25519PrivateKey.fromPEM(pem))
            } catch {
                throw Failure(description: "credential access-key.pem is not a PKCS#8 Ed25519 private key")
            }
            source = "systemd credentials"
        }
        var refreshSource = "a key \(generatedNote)"
        if let directory = credentialsDirectory, let credential = readCredential(directory + "/refresh-key") {
            (given.refresh, refreshSource) = (credential, "credential refresh-key")
        } else if let variable = environment["JWT_REFRESH_SECRET"] {
            (given.refresh, refreshSource) = (Array(variable.utf8), "JWT_REFRESH_SECRET")
        }
        if let refresh = given.refresh { try checkRefresh(refresh, source: refreshSource) }
        return (given, source + " (refresh key: HS256, from \(refreshSource))")
    }

    // MARK: Sources

    private func makeKey(secret: String, retiredAt: Int64?) throws -> SigningKey {
        if algorithm == .eddsa {
            guard let seed = Base64URL.decode(secret) else { throw Failure(description: "the keyring file is corrupt") }
            return SigningKey(ed25519: try Ed25519PrivateKey(seed: seed), retiredAt: retiredAt)
        }
        return SigningKey(secret: Array(secret.utf8), retiredAt: retiredAt)
    }

    /// The base access key, the refresh secret, and where they came from.
    private func loadSources() throws -> (access: SigningKey, refresh: [UInt8], source: String) {
        algorithm == .eddsa ? try loadEdDSASources() : try loadHS256Sources()
    }

    private func loadHS256Sources() throws -> (access: SigningKey, refresh: [UInt8], source: String) {
        // Generating, there is always a secret.
        let (accessSecret, refreshSecret, source) = try loadSecrets(generate: true)!
        try checkHS256(access: accessSecret, refresh: refreshSecret, source: source)
        return (SigningKey(secret: accessSecret), refreshSecret, source)
    }

    private func checkHS256(access accessSecret: [UInt8], refresh refreshSecret: [UInt8], source: String) throws {
        if accessSecret.count < KeyStore.minimumSecretBytes {
            throw Failure(description: "the access signing key (\(source)) is shorter than 32 bytes")
        }
        try KeyStore.checkVariety(accessSecret, name: "the access signing key (\(source))")
        try checkRefresh(refreshSecret, source: source)
        if accessSecret == refreshSecret {
            throw Failure(description: "the access and refresh signing keys (\(source)) are equal; they must differ")
        }
    }

    private func loadEdDSASources() throws -> (access: SigningKey, refresh: [UInt8], source: String) {
        let key: Ed25519PrivateKey
        var source: String
        if let directory = credentialsDirectory, let pem = readCredential(directory + "/access-key.pem") {
            do {
                key = try Ed25519PrivateKey.fromPEM(pem)
            } catch {
                throw Failure(description: "credential access-key.pem is not a PKCS#8 Ed25519 private key")
            }
            source = "systemd credentials"
        } else {
            try ensureKeysDirectory()
            let path = keysDirectory + "/access-key.pem"
            if let pem = try readKeyFile(path) {
                key = try Ed25519PrivateKey.fromPEM(pem)
            } else {
                key = try Ed25519PrivateKey.generate()
                try FileAtomic.write(try key.pem(), to: path, mode: 0o600)
            }
            source = "a generated Ed25519 key in the state directory"
        }
        let refresh: [UInt8]
        let refreshSource: String
        if let directory = credentialsDirectory, let credential = readCredential(directory + "/refresh-key") {
            refresh = credential
            refreshSource = "credential refresh-key"
        } else if let variable = environment["JWT_REFRESH_SECRET"] {
            refresh = Array(variable.utf8)
            refreshSource = "JWT_REFRESH_SECRET"
        } else {
            refresh = try generatedSecret(keysDirectory + "/refresh-key")
            refreshSource = "the generated refresh key in the state directory"
        }
        source += " (refresh key: HS256, from \(refreshSource))"
        try checkRefresh(refresh, source: refreshSource)
        return (SigningKey(ed25519: key), refresh, source)
    }

    private func checkRefresh(_ secret: [UInt8], source: String) throws {
        if secret.count < KeyStore.minimumSecretBytes {
            throw Failure(description: "the refresh signing key (\(source)) is shorter than 32 bytes")
        }
        try KeyStore.checkVariety(secret, name: "the refresh signing key (\(source))")
    }

    /// The fewest distinct byte values a secret may have: 32 × `a` is 32
    /// bytes long and no secret at all.
    public static let minimumDistinctBytes = 8

    static func checkVariety(_ secret: [UInt8], name: String) throws {
        if Set(secret).count < minimumDistinctBytes {
            throw Failure(
                description:
                    "\(name) has fewer than \(minimumDistinctBytes) distinct bytes; use a random secret (for example `openssl rand -base64 32`)"
            )
        }
    }

    /// The HS256 secrets: given, or (if `generate`) generated into the state
    /// directory; nil when none are given and `generate` is false.
    private func loadSecrets(generate: Bool) throws -> (access: [UInt8], refresh: [UInt8], source: String)? {
        if let directory = credentialsDirectory,
            FileManager.default.fileExists(atPath: directory + "/access-key")
                || FileManager.default.fileExists(atPath: directory + "/refresh-key")
        {
            guard let access = readCredential(directory + "/access-key") else {
                throw Failure(description: "credential access-key is missing or unreadable")
            }
            guard let refresh = readCredential(directory + "/refresh-key") else {
                throw Failure(description: "credential refresh-key is missing or unreadable")
            }
            return (access, refresh, "systemd credentials")
        }
        let access = environment["JWT_SECRET"]
        let refresh = environment["JWT_REFRESH_SECRET"]
        switch (access, refresh) {
        case (let access?, let refresh?):
            return (Array(access.utf8), Array(refresh.utf8), "JWT_SECRET/JWT_REFRESH_SECRET")
        case (nil, .some):
            throw Failure(description: "JWT_REFRESH_SECRET is set but JWT_SECRET is not; set both or neither")
        case (.some, nil):
            throw Failure(description: "JWT_SECRET is set but JWT_REFRESH_SECRET is not; set both or neither")
        case (nil, nil):
            guard generate else { return nil }
            return (
                try generatedSecret(keysDirectory + "/access-key"),
                try generatedSecret(keysDirectory + "/refresh-key"), "generated keys in the state directory"
            )
        }
    }

    private func readCredential(_ path: String) -> [UInt8]? {
        guard var bytes = FileManager.default.contents(atPath: path).map(Array.init) else { return nil }
        if bytes.last == 0x0A { bytes.removeLast() }
        return bytes
    }

    /// A key file in `STATE_DIR/keys/`: ours alone (see `StateFiles`), one
    /// trailing newline removed.
    func readKeyFile(_ path: String) throws -> [UInt8]? {
        do {
            guard var bytes = try StateFiles.readOwnedFile(path, what: "key file") else { return nil }
            if bytes.last == 0x0A { bytes.removeLast() }
            return bytes
        } catch let error as StateFiles.Untrusted {
            throw Failure(description: error.description)
        }
    }

    /// Reads a generated key, creating it (0600) on first start.
    private func generatedSecret(_ path: String) throws -> [UInt8] {
        try ensureKeysDirectory()
        if let existing = try readKeyFile(path) { return existing }
        let secret = Array(Base64URL.encode(SecureRandom.bytes(32)).utf8)
        try FileAtomic.write(Array(secret) + [0x0A], to: path, mode: 0o600)
        return secret
    }

    private func ensureKeysDirectory() throws {
        do {
            try StateFiles.prepareDirectory(keysDirectory, what: "keys directory", followLink: false)
        } catch let error as StateFiles.Untrusted {
            throw Failure(description: error.description)
        }
    }

    // MARK: Keyring

    struct Ring {
        struct Entry {
            var kid: String
            /// Rotated keys carry their secret (HS256) or seed (EdDSA); the
            /// base key's comes from its source.
            var secret: String?
            var createdAt: Int64
            var retiredAt: Int64?
        }
        var entries: [Entry] = []
    }

    private func keySets(ring: Ring, base: SigningKey, now: Int64, retention: Int64) throws -> KeySet {
        var current: SigningKey?
        var older: [SigningKey] = []
        for entry in ring.entries {
            let key: SigningKey
            if let stored = entry.secret {
                key = try makeKey(secret: stored, retiredAt: entry.retiredAt)
            } else if entry.kid == base.kid {
                key = entry.retiredAt.map { base.retired(at: $0) } ?? base
            } else {
                continue  // an earlier base key whose source is gone
            }
            guard key.kid == entry.kid else { throw Failure(description: "the keyring file is corrupt (kid mismatch)") }
            if let retired = entry.retiredAt {
                if KeyRetention.stillVerifies(retiredAt: retired, retention: retention, now: now) { older.append(key) }
            } else {
                current = key
            }
        }
        return KeySet(current: current ?? base, older: older)
    }

    func readRing() throws -> Ring {
        let data: [UInt8]
        do {
            guard let bytes = try StateFiles.readOwnedFile(ringPath, what: "keyring file") else { return Ring() }
            data = bytes
        } catch let error as StateFiles.Untrusted {
            throw Failure(description: error.description)
        }
        guard case .object(let object)? = try? JSONParser.parse(data),
            case .array(let items)? = object["keys"]
        else { throw Failure(description: "the keyring file \(ringPath) is not valid JSON") }
        var ring = Ring()
        for item in items {
            guard case .object(let entry) = item, case .string(let kid)? = entry["kid"],
                let created = entry["created_at"]?.int64Value
            else { throw Failure(description: "the keyring file \(ringPath) has a malformed entry") }
            ring.entries.append(
                .init(
                    kid: kid, secret: entry["secret"]?.stringValue, createdAt: created,
                    retiredAt: entry["retired_at"]?.int64Value))
        }
        return ring
    }

    private func writeRing(_ ring: Ring) throws {
        try ensureKeysDirectory()
        let items: [JSONValue] = ring.entries.map { entry in
            var object: JSONObject = ["kid": .string(entry.kid), "created_at": .int(entry.createdAt)]
            if let secret = entry.secret { object["secret"] = .string(secret) }
            object["retired_at"] = entry.retiredAt.map { .int($0) } ?? .null
            return .object(object)
        }
        try FileAtomic.write(JSONWriter.encode(.object(["keys": .array(items)])) + [0x0A], to: ringPath, mode: 0o600)
    }
}
