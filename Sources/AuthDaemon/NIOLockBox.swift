import NIOConcurrencyHelpers

/// A lock for daemon-side state that is not tied to an event loop.
typealias NIOLockBox = NIOLock
