import AuthCore
import AuthCrypto
import FuzzSupport

nonisolated(unsafe) let hsKeys = KeySet(current: SigningKey(secret: Array("fuzzing-secret-0123456789abcdefghij".utf8)))
nonisolated(unsafe) let edKeys = KeySet(
    current: SigningKey(ed25519: try! Ed25519PrivateKey(seed: [UInt8](repeating: 7, count: 32))))
let policy = TokenPolicy(issuer: "authd", audience: "authd-clients", leeway: 30)

/// Any bytes as a compact JWS, for both algorithms and both token kinds: the
/// parser and verifier must refuse without crashing; nothing forged verifies.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJWS(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let token = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    for keys in [hsKeys, edKeys] {
        for kind in [TokenKind.access, .refresh] {
            if let claims = try? JWSCodec.verify(token, kind: kind, keys: keys) {
                // Only a token signed with our key could get here: the fuzzer cannot.
                _ = try? ClaimsValidator.access(claims, policy: policy, now: 1_800_000_000)
                fatalError("a fuzzed token verified")
            }
        }
    }
    // The claims checks on arbitrary JSON, and the same claims signed here
    // with our keys, so the whole path a key holder's token takes (verify,
    // then every claims check) sees hostile claims: no value may crash it.
    if case .object(let object)? = try? JSONParser.parse(Array(UnsafeBufferPointer(start: data, count: size))) {
        _ = try? ClaimsValidator.access(object, policy: policy, now: 1_800_000_000)
        _ = try? ClaimsValidator.refresh(object, policy: policy, now: 1_800_000_000)
        for (keys, kind) in [(hsKeys, TokenKind.access), (edKeys, .access), (hsKeys, .refresh)] {
            let signed = JWSCodec.sign(claims: object, kind: kind, key: keys.current)
            // Too long or too deep for a token: refused before the claims.
            guard let verified = try? JWSCodec.verify(signed, kind: kind, keys: keys) else { continue }
            if kind == .access {
                _ = try? ClaimsValidator.access(verified, policy: policy, now: 1_800_000_000)
            } else {
                _ = try? ClaimsValidator.refresh(verified, policy: policy, now: 1_800_000_000)
            }
        }
    }
    _ = Base64URL.decode(raw: UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("FuzzJWS_main")
public func fuzzerEntry(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzJWS)
}
