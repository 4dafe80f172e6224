import Foundation

extension Daemon {
    /// The keys this daemon reads from outside its state directory
    /// (credentials, environment variables): a backup of the state
    /// directory does not hold them, and says so.
    static func keysGivenOutside(environment: [String: String], credentialsDirectory: String?) -> [String] {
        var given: [String] = []
        if let directory = credentialsDirectory {
            for name in ["access-key", "access-key.pem", "refresh-key", "key-encryption-key"]
            where FileManager.default.fileExists(atPath: directory + "/" + name) {
                given.append("credential " + name)
            }
        }
        for name in ["JWT_SECRET", "JWT_REFRESH_SECRET", "AUTHD_KEY_ENCRYPTION_KEY"] where environment[name] != nil {
            given.append("environment variable " + name)
        }
        return given
    }
}
