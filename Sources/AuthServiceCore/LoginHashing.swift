import AuthCore
import AuthCrypto

/// What one login attempt hashes, so that its time tells nothing about the
/// account: the account's own hash (or, for an unknown email or an unusable
/// password, an unmatchable hash in the scheme that would have been
/// checked), then an unmatchable hash in every other scheme a stored hash
/// may be in. While bcrypt and argon2id hashes coexist (a migration), every
/// attempt therefore costs one hash of each: a known account still in the
/// old scheme, a migrated one and an unknown email take the same time.
struct LoginHashing: Sendable {
    let hashing: PasswordHashing
    /// One unmatchable hash per scheme, at the configured parameters.
    private let unmatchable: [PasswordHashing.Scheme: String]

    init(hashing: PasswordHashing) throws {
        self.hashing = hashing
        var unmatchable: [PasswordHashing.Scheme: String] = [:]
        for scheme in PasswordHashing.Scheme.allCases {
            var other = hashing
            other.scheme = scheme
            unmatchable[scheme] = try other.unmatchableHash()
        }
        self.unmatchable = unmatchable
    }

    /// The scheme a login checks `storedHash` in (the configured one for an
    /// unknown email, or a hash of no known scheme).
    func scheme(of storedHash: String?) -> PasswordHashing.Scheme {
        storedHash.flatMap(PasswordHashing.scheme(of:)) ?? hashing.scheme
    }

    /// Checks `password` against `storedHash` when there is one, `usable`
    /// and verifiable, else against an unmatchable hash in its scheme (a
    /// row no check can match takes an attempt's time all the same); then pads
    /// with the other schemes of `storedSchemes` (nil: not known yet, so
    /// every scheme) and the configured one. True only for a real match.
    func check(
        _ password: [UInt8], against storedHash: String?, usable: Bool, storedSchemes: Set<PasswordHashing.Scheme>?
    ) -> Outcome {
        let checked = scheme(of: storedHash)
        let checkable = storedHash.map(PasswordHashing.isVerifiable) ?? true
        var matched = false
        if let storedHash, usable, checkable {
            matched = PasswordHashing.verify(password, against: storedHash)
        } else {
            _ = PasswordHashing.verify(
                Array(password.prefix(checked.maximumPasswordBytes)), against: unmatchable[checked]!)
        }
        for scheme in Self.padding(checked: checked, configured: hashing.scheme, stored: storedSchemes) {
            _ = PasswordHashing.verify(
                Array(password.prefix(scheme.maximumPasswordBytes)), against: unmatchable[scheme]!)
        }
        return Outcome(matched: matched, storedHashCheckable: checkable)
    }

    /// A login's check: whether the password matched, and whether the
    /// stored hash (if any) is one a check can compute at all.
    struct Outcome {
        let matched: Bool
        let storedHashCheckable: Bool
    }

    /// The schemes an attempt that checked `checked` also hashes in: every
    /// scheme a stored hash may be in, and the configured one (an unknown
    /// email costs a hash in it), but `checked`.
    static func padding(
        checked: PasswordHashing.Scheme, configured: PasswordHashing.Scheme, stored: Set<PasswordHashing.Scheme>?
    ) -> [PasswordHashing.Scheme] {
        let inPlay = (stored ?? Set(PasswordHashing.Scheme.allCases)).union([configured])
        return PasswordHashing.Scheme.allCases.filter { $0 != checked && inPlay.contains($0) }
    }
}
