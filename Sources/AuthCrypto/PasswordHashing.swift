/// How new passwords are hashed (the configured scheme and its
/// parameters), and how a stored hash is checked whatever the
/// configuration: a hash says which scheme made it, so accounts keep
/// logging in across a change of scheme and move to the configured one
/// at their next login (`shouldReplace`).
public struct PasswordHashing: Sendable, Equatable {
    public enum Scheme: String, Sendable, CaseIterable {
        case bcrypt
        case argon2id

        /// How every hash of this scheme begins (bcrypt's `$2a$`, `$2b$` and
        /// `$2y$` alike).
        public var hashPrefix: String {
            switch self {
            case .bcrypt: "$2"
            case .argon2id: "$argon2id$"
            }
        }

        /// The longest password a hash in this scheme takes: bcrypt reads
        /// at most 72 bytes (a longer one would be cut, silently, so it is
        /// refused); argon2id reads all of it, and 1024 bytes is room for
        /// any passphrase.
        public var maximumPasswordBytes: Int {
            switch self {
            case .bcrypt: Bcrypt.maximumPasswordBytes
            case .argon2id: 1024
            }
        }
    }

    public var scheme: Scheme
    public var bcryptCost: Int
    public var argon2: Argon2id.Parameters

    /// OWASP's minimum for argon2id: 19 MiB, two passes, one lane.
    public static let owaspArgon2 = Argon2id.Parameters(memoryKiB: 19_456, iterations: 2, parallelism: 1)

    public init(scheme: Scheme = .bcrypt, bcryptCost: Int = 12, argon2: Argon2id.Parameters = owaspArgon2) {
        self.scheme = scheme
        self.bcryptCost = bcryptCost
        self.argon2 = argon2
    }

    /// A new hash of `password` in the configured scheme.
    public func hash(_ password: [UInt8]) throws -> String {
        switch scheme {
        case .bcrypt: try Bcrypt.hash(password, cost: bcryptCost)
        case .argon2id: try Argon2id.hash(password, parameters: argon2)
        }
    }

    /// A hash in the configured scheme that matches no password and costs a
    /// full check: what an unknown email is checked against.
    public func unmatchableHash() throws -> String {
        switch scheme {
        case .bcrypt: try Bcrypt.unmatchableSetting(cost: bcryptCost)
        case .argon2id: Argon2id.unmatchable(parameters: argon2)
        }
    }

    /// Whether `password` matches `hash`, in whichever scheme made it; a
    /// hash of no known scheme matches nothing.
    public static func verify(_ password: [UInt8], against hash: String) -> Bool {
        switch scheme(of: hash) {
        case .bcrypt?: Bcrypt.verify(password, hash: hash)
        case .argon2id?: Argon2id.verify(password, encoded: hash)
        case nil: false
        }
    }

    /// Whether `verify` computes a hash for `hash` (a well-formed hash of a
    /// known scheme, within the limits and the memory budget): a login
    /// checks any other against an unmatchable hash instead, so a row no
    /// check can match still costs an attempt the time of one.
    public static func isVerifiable(_ hash: String) -> Bool {
        switch scheme(of: hash) {
        case .bcrypt?: Bcrypt.isWellFormed(hash)
        case .argon2id?: Argon2id.isVerifiable(hash)
        case nil: false
        }
    }

    /// The scheme that made `hash`, from its prefix.
    public static func scheme(of hash: String) -> Scheme? {
        if Bcrypt.cost(of: hash) != nil { return .bcrypt }
        if hash.hasPrefix("$argon2id$") { return .argon2id }
        return nil
    }

    /// Whether a hash that just matched should be replaced by a new one in
    /// the configured scheme: it is in another scheme, or in bcrypt below
    /// the configured cost (a lower configured cost leaves stronger hashes
    /// alone), or in argon2id with other parameters.
    public func shouldReplace(_ hash: String) -> Bool {
        switch (scheme, Self.scheme(of: hash)) {
        case (.bcrypt, .bcrypt?): (Bcrypt.cost(of: hash) ?? bcryptCost) < bcryptCost
        case (.argon2id, .argon2id?): Argon2id.parameters(of: hash) != argon2
        case (_, nil): false
        default: true
        }
    }
}
