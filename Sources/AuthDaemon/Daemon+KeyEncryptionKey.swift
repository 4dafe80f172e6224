import AuthCrypto
import Foundation

extension Daemon {
    /// The key-encryption key: the credential `key-encryption-key`, else
    /// `AUTHD_KEY_ENCRYPTION_KEY`. Not a setting (no flag, no config key,
    /// never printed). Required with a shared database, whose signing keys
    /// it seals; nil when absent and not required.
    static func keyEncryptionKey(environment: [String: String], required: Bool) throws -> KeyEncryptionKey? {
        var text: String?
        var source = "AUTHD_KEY_ENCRYPTION_KEY"
        if let directory = environment["CREDENTIALS_DIRECTORY"],
            let bytes = FileManager.default.contents(atPath: directory + "/key-encryption-key")
        {
            (text, source) = (String(decoding: bytes, as: UTF8.self), "credential key-encryption-key")
        } else {
            text = environment["AUTHD_KEY_ENCRYPTION_KEY"]
        }
        guard let text else {
            if required {
                throw StartupError(
                    "database_url is set, but no key-encryption key is given: set the credential key-encryption-key or AUTHD_KEY_ENCRYPTION_KEY (64 hexadecimal characters, for example from `openssl rand -hex 32`)"
                )
            }
            return nil
        }
        do {
            return try KeyEncryptionKey(text: text)
        } catch let error as KeyEncryptionKey.Failure {
            throw StartupError("\(source): \(error.description)")
        }
    }

    /// With SQLite and no key given, what is sealed (TOTP secrets, the
    /// successors kept for the refresh grace window) is sealed under a key
    /// generated once into `STATE_DIR/keys/key-encryption-key` (0600,
    /// hexadecimal), read again at every start. Never on a shared database:
    /// every host must be given the same key there.
    static func generatedKeyEncryptionKey(stateDirectory: String) throws -> KeyEncryptionKey {
        let directory = stateDirectory + "/keys"
        let path = directory + "/key-encryption-key"
        do {
            try StateFiles.prepareDirectory(directory, what: "keys directory", followLink: false)
            if let bytes = try StateFiles.readOwnedFile(path, what: "key file") {
                do {
                    return try KeyEncryptionKey(text: String(decoding: bytes, as: UTF8.self))
                } catch let error as KeyEncryptionKey.Failure {
                    throw StartupError("\(path): \(error.description)")
                }
            }
        } catch let error as StateFiles.Untrusted {
            throw StartupError(error.description)
        }
        let key = KeyEncryptionKey.generate()
        do {
            try FileAtomic.write(Array((key.text + "\n").utf8), to: path, mode: 0o600)
        } catch let error as KeyStore.Failure {
            throw StartupError(error.description)
        }
        return key
    }
}
