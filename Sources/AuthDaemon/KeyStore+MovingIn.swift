import AuthCore
import AuthCrypto
import AuthServiceCore
import Foundation

/// Moving a state directory's keys into a shared database (`authd migrate`).
extension KeyStore {
    /// The keys of a state directory, read as they are: nothing generated,
    /// nothing written (`authd migrate`: keys it made up would be keys no
    /// token was signed with).
    public static func keysToMove(
        stateDirectory: String, credentialsDirectory: String?, environment: [String: String],
        algorithm: SigningAlgorithm, retention: Int64, sealingWith keyring: SharedKeyring, now: Int64
    ) throws -> [StoredSigningKey] {
        let store = KeyStore(
            keysDirectory: stateDirectory + "/keys", credentialsDirectory: credentialsDirectory,
            environment: environment, algorithm: algorithm)
        return try store.keysToMove(sealingWith: keyring, retention: retention, now: now)
    }

    /// The keys of this state directory as rows of a shared database
    /// (`authd migrate --from-sqlite`): generated ones sealed by `keyring`,
    /// given ones by kid only (the hosts must then be given them too), with
    /// the rotated access keys of the keyring and their lifetimes.
    func keysToMove(sealingWith keyring: SharedKeyring, retention: Int64, now: Int64) throws
        -> [StoredSigningKey]
    {
        try lock.withLock {
            let name = SharedKeyring.algorithmName(algorithm)
            let (given, _) = try givenKeys(for: algorithm)
            var ring = try readRing()
            let base: (kid: String, secret: String?)
            if let access = given.access {
                base = (access.kid, nil)
            } else if algorithm == .eddsa {
                guard let pem = try readKeyFile(keysDirectory + "/access-key.pem") else {
                    throw Failure(
                        description:
                            "no access key to move: neither the credential access-key.pem nor \(keysDirectory)/access-key.pem (give the credentials the daemon was given)"
                    )
                }
                let key = try Ed25519PrivateKey.fromPEM(pem)
                base = (SigningKey(ed25519: key).kid, Base64URL.encode(key.seed))
            } else {
                guard let secret = try readKeyFile(keysDirectory + "/access-key") else {
                    let eddsa = FileManager.default.fileExists(atPath: keysDirectory + "/access-key.pem")
                    throw Failure(
                        description: eddsa
                            ? "\(keysDirectory) holds an Ed25519 key: pass --algorithm EdDSA (or the daemon's config)"
                            : "no access key to move: neither a credential, JWT_SECRET nor \(keysDirectory)/access-key (give the secrets the daemon was given)"
                    )
                }
                base = (SigningKey(secret: secret).kid, String(decoding: secret, as: UTF8.self))
            }
            let baseEntry = ring.entries.first { $0.kid == base.kid && $0.secret == nil }
            if baseEntry == nil {
                // A base key the ring has not seen is newer than the ring (as in `reload`).
                for index in ring.entries.indices where ring.entries[index].retiredAt == nil {
                    ring.entries[index].retiredAt = now
                }
            }
            var rows = [
                try keyring.movedIn(
                    secret: base.secret, kid: base.kid, purpose: .access, algorithm: name, isBase: true,
                    createdAt: baseEntry?.createdAt ?? now, retiredAt: baseEntry?.retiredAt)
            ]
            for entry in ring.entries
            where entry.secret != nil
                && KeyRetention.stillVerifies(retiredAt: entry.retiredAt, retention: retention, now: now)
            {
                rows.append(
                    try keyring.movedIn(
                        secret: entry.secret, kid: entry.kid, purpose: .access, algorithm: name, isBase: false,
                        createdAt: entry.createdAt, retiredAt: entry.retiredAt))
            }
            let refresh: (kid: String, secret: String?)
            if let given = given.refresh {
                refresh = (SigningKey(secret: given).kid, nil)
            } else {
                guard let secret = try readKeyFile(keysDirectory + "/refresh-key") else {
                    throw Failure(
                        description:
                            "no refresh key to move: neither a credential, JWT_REFRESH_SECRET nor \(keysDirectory)/refresh-key"
                    )
                }
                refresh = (SigningKey(secret: secret).kid, String(decoding: secret, as: UTF8.self))
            }
            rows.append(
                try keyring.movedIn(
                    secret: refresh.secret, kid: refresh.kid, purpose: .refresh, algorithm: "HS256", isBase: true,
                    createdAt: now, retiredAt: nil))
            return rows
        }
    }
}
