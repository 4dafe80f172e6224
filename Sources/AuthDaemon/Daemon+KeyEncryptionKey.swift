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
}
