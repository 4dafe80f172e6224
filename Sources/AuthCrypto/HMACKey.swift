import CCrypto
import Synchronization

/// An HMAC-SHA256 key. Each thread keeps one initialised `EVP_MAC_CTX` per
/// key and re-initialises it with a NULL key per message, which avoids the
/// implicit algorithm fetch and key schedule of one-shot `HMAC()`.
public final class HMACKey: @unchecked Sendable {
    public let bytes: [UInt8]
    private let serial: Int

    public init(bytes: [UInt8]) {
        self.bytes = bytes
        self.serial = HMACKey.nextSerial()
    }

    /// HMAC-SHA256 of `message` (32 bytes).
    public func authenticate<Message: ContiguousBytes>(_ message: Message) -> [UInt8] {
        let context = HMACKey.contexts.value.context(for: self)
        return message.withUnsafeBytes { buffer in
            var out = [UInt8](repeating: 0, count: 32)
            var length = 0
            let ok =
                EVP_MAC_init(context, nil, 0, nil) == 1
                && EVP_MAC_update(context, buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), buffer.count)
                    == 1
                && EVP_MAC_final(context, &out, &length, 32) == 1
            precondition(ok && length == 32, "HMAC-SHA256 failed in libcrypto")
            return out
        }
    }

    // MARK: Per-thread contexts

    /// An atomic, not `Mutex`: TSan does not see the futex behind
    /// Synchronization's Mutex on Linux and reports every caller as a race.
    private static let counter = Atomic(0)
    private static func nextSerial() -> Int {
        counter.add(1, ordering: .relaxed).newValue
    }

    nonisolated(unsafe) private static let mac: OpaquePointer = {
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else {
            fatalError("libcrypto has no HMAC implementation")
        }
        return mac
    }()

    private static let contexts = ThreadLocal { ContextCache() }

    private final class ContextCache {
        private var bySerial: [Int: OpaquePointer] = [:]

        func context(for key: HMACKey) -> OpaquePointer {
            if let context = bySerial[key.serial] { return context }
            guard let context = EVP_MAC_CTX_new(HMACKey.mac) else { fatalError("EVP_MAC_CTX_new failed") }
            let ok = "digest".withCString { name in
                "SHA256".withCString { digest in
                    var params = [
                        OSSL_PARAM_construct_utf8_string(name, UnsafeMutablePointer(mutating: digest), 0),
                        OSSL_PARAM_construct_end(),
                    ]
                    return key.bytes.withUnsafeBufferPointer { keyBytes in
                        EVP_MAC_init(context, keyBytes.baseAddress, keyBytes.count, &params) == 1
                    }
                }
            }
            precondition(ok, "EVP_MAC_init failed")
            if bySerial.count > 64 {
                // Keys come and go only through rotation; never let a long-lived
                // thread hoard contexts for keys that are gone.
                for (_, stale) in bySerial { EVP_MAC_CTX_free(stale) }
                bySerial.removeAll()
            }
            bySerial[key.serial] = context
            return context
        }

        deinit {
            for (_, context) in bySerial { EVP_MAC_CTX_free(context) }
        }
    }
}

/// Raw bytes that can be read in place.
public protocol ContiguousBytes {
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}
extension Array: ContiguousBytes where Element == UInt8 {}
extension ArraySlice: ContiguousBytes where Element == UInt8 {}
extension UnsafeRawBufferPointer: ContiguousBytes {
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(self)
    }
}
