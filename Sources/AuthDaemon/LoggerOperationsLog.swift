import AuthServiceCore
import Logging

/// The service's operations log on the daemon's `Logger` (stderr, which
/// systemd sends to the journal).
struct LoggerOperationsLog: OperationsLog {
    let logger: Logger

    func log(_ level: OperationsLogLevel, _ message: String, metadata: [String: String]) {
        let metadata = metadata.mapValues { Logger.MetadataValue.string($0) }
        switch level {
        case .warning: logger.warning("\(message)", metadata: metadata)
        case .error: logger.error("\(message)", metadata: metadata)
        }
    }
}
