import AuthCore
import Testing

@Suite struct DatabaseURLTests {
    @Test func tcpWithEverything() throws {
        let url = try DatabaseURL.parse(
            "postgresql://authd:s%40cret@db.example.com:6432/auth?sslmode=verify-full&application_name=web1")
        #expect(url.endpoint == .tcp(host: "db.example.com", port: 6432))
        #expect(url.username == "authd")
        #expect(url.password == "s@cret")
        #expect(url.database == "auth")
        #expect(url.tls == .verifyFull)
        #expect(url.applicationName == "web1")
        #expect(url.socketPath == nil)
    }

    @Test func socketDirectoryAsAParameterOrEncodedHost() throws {
        let query = try DatabaseURL.parse("postgresql://postgres@/authd_test?host=/tmp/pg%20dir&port=55432")
        #expect(query.endpoint == .socket(directory: "/tmp/pg dir", port: 55432))
        #expect(query.socketPath == "/tmp/pg dir/.s.PGSQL.55432")
        #expect(query.password == nil)
        let encoded = try DatabaseURL.parse("postgres://authd@%2Frun%2Fpostgresql/authd")
        #expect(encoded.endpoint == .socket(directory: "/run/postgresql", port: 5432))
        #expect(encoded.socketPath == "/run/postgresql/.s.PGSQL.5432")
        // No user: the daemon's own (peer authentication).
        let peer = try DatabaseURL.parse("postgresql:///authd?host=/run/postgresql")
        #expect(peer.username == "")
        #expect(peer.endpoint == .socket(directory: "/run/postgresql", port: 5432))
        #expect(peer.database == "authd")
    }

    @Test func theDescriptionNeverShowsThePassword() throws {
        let url = try DatabaseURL.parse("postgresql://authd:hunter2@localhost/auth")
        #expect(!url.description.contains("hunter2"))
        #expect(url.description.contains("authd:***@localhost:5432/auth"))
    }

    @Test(arguments: [
        ("mysql://u@h/d", "scheme"), ("postgresql://u@h", "database"),
        ("postgresql://u@h/d?connect_timeout=3", "connect_timeout"),
        ("postgresql://u@h:0/d", "port"), ("postgresql://u@h:99999/d", "port"), ("postgresql://u@h/d?x=1", "unknown"),
        ("postgresql://u@h/d?sslmode=verify-ca", "sslmode"), ("postgresql://u:%zz@h/d", "percent"),
        ("postgresql://u@/d", "host"), ("postgresql://u%00@h/d", "not valid"), ("db.example.com", "not a URL"),
    ])
    func badURLsSayWhatIsWrong(_ text: String, _ word: String) {
        #expect {
            try DatabaseURL.parse(text)
        } throws: { error in
            (error as? DatabaseURL.ParseError)?.description.contains(word) == true
        }
    }

    @Test func aPasswordIsNeverEchoedInAnError() {
        do {
            _ = try DatabaseURL.parse("postgresql://u:topsecret@h:70000/d")
            Issue.record("parsed")
        } catch {
            #expect(!error.description.contains("topsecret"))
        }
    }
}
