import ArgumentParser
import AuthClient
import AuthJSON

struct SessionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session", abstract: "List and revoke sessions.",
        subcommands: [SessionList.self, SessionRevoke.self])
}

struct SessionList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "A user's live sessions.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "User id or email.") var user: String

    func run() async throws {
        try await Exit.guarding(options.json) {
            let admin = options.admin
            let sessions = try await admin.sessions(userID: try await resolveUser(user, admin).id)
            if options.json {
                printJSON(
                    .array(
                        sessions.map {
                            .object([
                                "id": .string($0.id), "user_id": .string($0.userID), "created_at": .int($0.createdAt),
                                "last_used_at": .int($0.lastUsedAt), "expires_at": .int($0.expiresAt),
                            ])
                        }))
            } else {
                Table.print(
                    ["SESSION", "CREATED", "LAST USED", "EXPIRES"],
                    sessions.map {
                        [$0.id, formatTime($0.createdAt), formatTime($0.lastUsedAt), formatTime($0.expiresAt)]
                    })
            }
        }
    }
}

struct SessionRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "End one session, or every session of a user.",
        discussion:
            "Examples:\n  authctl session revoke --id Qk9fV3...\n  authctl session revoke --user alice@example.com")
    @OptionGroup var options: GlobalOptions
    @Option(help: "The session id.") var id: String?
    @Option(help: "A user id or email: end all their sessions.") var user: String?

    func validate() throws {
        guard (id == nil) != (user == nil) else { throw ValidationError("give exactly one of --id and --user") }
    }

    func run() async throws {
        try await Exit.guarding(options.json) {
            let admin = options.admin
            let count: Int
            if let id {
                count = try await admin.revokeSession(id: id)
            } else {
                count = try await admin.revokeSessions(userID: try await resolveUser(user!, admin).id)
            }
            if options.json {
                printJSON(.object(["revoked": .int(count)]))
            } else {
                print("revoked \(count) session(s)")
            }
        }
    }
}

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Signing keys.", subcommands: [KeysRotate.self])
}

struct KeysRotate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Rotate the access-token key; tokens under older keys verify until they expire.")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await Exit.guarding(options.json) {
            let kid = try await options.admin.rotateKeys()
            if options.json { printJSON(.object(["kid": .string(kid)])) } else { print("new signing key: \(kid)") }
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Health and statistics.")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await Exit.guarding(options.json) {
            let client = options.client
            let health = try await client.health()
            let stats = try? await options.admin.stats()
            if options.json {
                var object: JSONObject = [
                    "status": .string(health.status), "version": .string(health.version),
                    "uptime_s": .int(health.uptimeSeconds),
                ]
                if let stats { object["stats"] = .object(stats) }
                printJSON(.object(object))
                return
            }
            print("authd \(health.version): \(health.status), up \(health.uptimeSeconds) s")
            guard let stats else {
                print("(statistics need an admin: root, an admin uid/group, or 'authctl login')")
                return
            }
            if let users = stats["users"]?.int64Value, let sessions = stats["live_sessions"]?.int64Value {
                print("\(users) users, \(sessions) live sessions")
            }
            if case .object(let methods)? = stats["methods"] {
                Table.print(
                    ["METHOD", "COUNT", "ERRORS", "P50 µs", "P99 µs"],
                    methods.members.map { member in
                        let figures = member.value.objectValue ?? JSONObject()
                        return [member.key]
                            + ["count", "errors", "p50_us", "p99_us"].map {
                                figures[$0]?.int64Value.map(String.init) ?? "-"
                            }
                    })
            }
        }
    }
}

struct MetricsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics", abstract: "Print the metrics in the Prometheus text format.",
        discussion: """
            For node_exporter's textfile collector. Write a temporary file and rename
            it, so the collector never reads half a file:
              cd /var/lib/node_exporter/textfile_collector &&
                authctl metrics > authd.prom.tmp && mv authd.prom.tmp authd.prom
            """)
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await Exit.guarding(options.json) {
            let text = try await options.admin.metrics()
            if options.json {
                printJSON(.object(["text": .string(text)]))
            } else {
                try StandardOutput.write(text)
            }
        }
    }
}

struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Log in as a user; an admin's token is then used for admin commands.",
        discussion: """
            The access token is kept in $XDG_RUNTIME_DIR/authctl/token (mode 0600) until
            it expires or 'authctl logout'. Example:
              authctl login admin@example.com && authctl user list
            """)
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The user's email.") var email: String
    @Flag(
        help:
            "Read the password from standard input (one line), and the second-factor code from the next line when one is needed."
    ) var passwordStdin = false
    @Flag(help: "Print the tokens instead of keeping the access token.") var printTokens = false

    func run() async throws {
        let password = try PasswordInput.read(fromStdin: passwordStdin, confirm: false)
        try await Exit.guarding(options.json) {
            let client = options.client
            let result: LoginResult
            do {
                result = try await client.login(email: email, password: password)
            } catch AuthError.secondFactorRequired(let mfaToken, _) {
                // The account has a second factor: its code finishes the login.
                result = try await client.mfa(token: mfaToken, code: try PasswordInput.code(fromStdin: passwordStdin))
            }
            if printTokens || options.json {
                printJSON(
                    .object([
                        "access_token": .string(result.accessToken), "refresh_token": .string(result.refreshToken),
                        "expires_in": .int(result.expiresIn),
                        "user": .object([
                            "id": .string(result.user.id),
                            "email": .string(result.user.email), "role": .string(result.user.role),
                        ]),
                    ]))
            }
            if !printTokens {
                try TokenFile.write(result.accessToken)
                if !options.json {
                    print(
                        "logged in as \(result.user.email) (\(result.user.role)); token valid for \(result.expiresIn) s"
                    )
                }
            }
        }
    }
}

struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout", abstract: "Forget the token kept by 'authctl login'.")
    func run() async throws { TokenFile.remove() }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Verify an access token (debugging).",
        discussion: "Example:\n  authctl verify \"$TOKEN\" --role admin")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The access token (a leading 'Bearer ' is fine).") var token: String
    @Option(help: "Require this exact role.") var role: String?

    func run() async throws {
        try await Exit.guarding(options.json) {
            let verified = try await options.client.verify(token: token, requiredRole: role)
            if options.json {
                printJSON(
                    .object([
                        "user": .object([
                            "id": .string(verified.user.id), "email": .string(verified.user.email),
                            "role": .string(verified.user.role),
                        ]),
                        "claims": .object(verified.claims), "expires_at": .int(verified.expiresAt),
                    ]))
            } else {
                print(
                    "valid: user \(verified.user.id) \(verified.user.email) (\(verified.user.role)), expires \(formatTime(verified.expiresAt))"
                )
            }
        }
    }
}
