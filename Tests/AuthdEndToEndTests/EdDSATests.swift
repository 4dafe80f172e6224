import AuthCore
import AuthCrypto
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.timeLimit(.minutes(5))) struct EdDSAEndToEndTests {
    @Test func edDSAAccessTokensVerifyAndArePublishedInTheJWKS() throws {
        try withDaemon(flags: ["algorithm": "EdDSA"]) { daemon, rpc in
            try rpc.createUser("ed@example.com")
            let tokens = try rpc.login("ed@example.com")
            let header = try JSONParser.parse(Base64URLDecode(String(tokens.access.split(separator: ".")[0])))
            #expect(header.objectValue?.string("alg") == "EdDSA")
            // Refresh tokens stay HS256.
            let refreshHeader = try JSONParser.parse(Base64URLDecode(String(tokens.refresh.split(separator: ".")[0])))
            #expect(refreshHeader.objectValue?.string("alg") == "HS256")
            #expect(try rpc.verify(tokens.access)["result"] != nil)
            let jwks = try rpc.result("keys.jwks")
            guard case .array(let keys)? = jwks["keys"], let jwk = keys.first?.objectValue else {
                throw DaemonError("no keys")
            }
            #expect(keys.count == 1)
            #expect(jwk.string("kty") == "OKP")
            #expect(jwk.string("crv") == "Ed25519")
            #expect(jwk.string("alg") == "EdDSA")
            #expect(jwk.string("use") == "sig")
            #expect(jwk.string("kid") == header.objectValue?.string("kid"))
            #expect(jwk["d"] == nil)
            // The generated private key is 0600 in the state dir.
            var info = stat()
            #expect(stat(daemon.stateDirectory + "/keys/access-key.pem", &info) == 0)
            #expect(info.st_mode & 0o777 == 0o600)
            // An HS256 token made with the public key as the HMAC secret is refused.
            let x = jwk.string("x")!
            var claims = try JSONParser.parse(Base64URLDecode(String(tokens.access.split(separator: ".")[1])))
                .objectValue!
            claims["jti"] = .string("forged")
            let input =
                Base64URL.encode(Array(#"{"alg":"HS256","typ":"at+jwt","kid":"\#(jwk.string("kid")!)"}"#.utf8)) + "."
                + Base64URL.encode(JSONWriter.encode(.object(claims)))
            for secret in [Array(x.utf8), Base64URL.decode(x)!] {
                let forged = input + "." + Base64URL.encode(HMACKey(bytes: secret).authenticate(Array(input.utf8)))
                #expect(try rpc.verify(forged).errorReason == "token_invalid")
            }
        }
    }

    @Test func theVerifiedTokenCacheNeverSkipsSessionOrExpiryChecks() throws {
        try withDaemon(flags: ["algorithm": "EdDSA", "access-ttl": "5", "clock-leeway": "0"]) { _, rpc in
            try rpc.createUser("cache@example.com")
            let tokens = try rpc.login("cache@example.com")
            for _ in 0..<3 { #expect(try rpc.verify(tokens.access)["result"] != nil) }
            let other = try rpc.login("cache@example.com")
            #expect(try rpc.verify(other.access)["result"] != nil)
            _ = try rpc.result("auth.logout", ["refresh_token": .string(other.refresh)])
            #expect(try rpc.verify(other.access).errorReason == "session_revoked")
            Thread.sleep(forTimeInterval: 5.2)
            #expect(try rpc.verify(tokens.access).errorReason == "token_expired")
        }
    }

    @Test func rotationInEdDSAModeAndTheOldKeyLeavesTheJWKS() throws {
        try withDaemon(flags: ["algorithm": "EdDSA", "access-ttl": "5", "clock-leeway": "0"]) { daemon, rpc in
            try rpc.createUser("rot@example.com")
            let before = try rpc.login("rot@example.com")
            let rotated = try rpc.result("keys.rotate")
            #expect(rotated.string("algorithm") == "EdDSA")
            let after = try rpc.login("rot@example.com")
            #expect(try kid(of: after.access) == rotated.string("kid"))
            #expect(try rpc.verify(before.access)["result"] != nil)
            guard case .array(let both)? = try rpc.result("keys.jwks")["keys"] else { throw DaemonError("no keys") }
            #expect(both.count == 2)
            Thread.sleep(forTimeInterval: 6.1)
            guard case .array(let one)? = try rpc.result("keys.jwks")["keys"] else { throw DaemonError("no keys") }
            #expect(one.count == 1)
            #expect(one.first?.objectValue?.string("kid") == rotated.string("kid"))
            // Survives a restart.
            #expect(daemon.stop() == 0)
            try daemon.start()
            #expect(try kid(of: try daemon.connect().login("rot@example.com").access) == rotated.string("kid"))
        }
    }

    @Test func aCredentialPEMKeyIsTheOneUsed() throws {
        let directory = DaemonProcess.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let key = try Ed25519PrivateKey.generate()
        try Data(try key.pem()).write(to: URL(fileURLWithPath: directory + "/access-key.pem"))
        try withDaemon(flags: ["algorithm": "EdDSA"], environment: ["CREDENTIALS_DIRECTORY": directory]) { _, rpc in
            try rpc.createUser("pem@example.com")
            let token = try rpc.login("pem@example.com").access
            #expect(try kid(of: token) == key.publicKey.thumbprint)
            let parts = token.split(separator: ".")
            let input = Array((parts[0] + "." + parts[1]).utf8)
            let signature = Base64URL.decode(String(parts[2]))!
            #expect(input.withUnsafeBytes { key.publicKey.isValidSignature(signature, for: $0) })
        }
    }
}
