import AuthCore

/// Where security events go (the daemon's `SecurityLog` writes them to the
/// journal or stderr). Recording never fails the request that caused it.
public protocol SecurityEventSink: Sendable {
    func record(_ event: SecurityEvent)
}

/// Where operational trouble goes that is not a security event: an internal
/// error's cause, a failed best-effort write. Never sent to a peer.
public protocol OperationsLog: Sendable {
    func log(_ level: OperationsLogLevel, _ message: String, metadata: [String: String])
}

public enum OperationsLogLevel: Sendable {
    case warning
    case error
}
