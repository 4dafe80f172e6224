import ArgumentParser
import AuthClient
import AuthJSON

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage users.",
        subcommands: [
            UserAdd.self, UserList.self, UserShow.self, UserSetRole.self, UserSetEmail.self, UserActivate.self,
            UserDeactivate.self,
            UserPasswd.self, UserDelete.self, UserMFA.self,
        ])
}

struct UserAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Create a user; the password is asked twice, without echo.",
        discussion: """
            Examples:
              authctl user add alice@example.com --role editor
              printf '%s\\n' "$PASSWORD" | authctl user add bot@example.com --password-stdin
            """)
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The user's email.") var email: String
    @Option(help: "The role (default: user).") var role = "user"
    @Flag(help: "Read the password from standard input (one line).") var passwordStdin = false
    @Flag(help: "Create the user deactivated.") var inactive = false

    func run() async throws {
        let password = try PasswordInput.read(fromStdin: passwordStdin, confirm: true)
        try await Exit.guarding(options.json) {
            let user = try await options.admin.createUser(
                email: email, password: password, role: role, active: !inactive)
            if options.json {
                printJSON(user.json)
            } else {
                print("created user \(user.id) \(user.email) (\(user.role))")
            }
        }
    }
}

struct UserList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List users in creation order.")
    @OptionGroup var options: GlobalOptions
    @Option(help: "At most this many (default: all).") var limit: Int?

    func run() async throws {
        try await Exit.guarding(options.json) {
            var users: [UserRecord] = []
            var cursor: String?
            repeat {
                let page = try await options.admin.listUsers(limit: min(1000, limit ?? 1000), after: cursor)
                users += page.users
                cursor = page.next
            } while cursor != nil && users.count < (limit ?? .max)
            if let limit { users = Array(users.prefix(limit)) }
            if options.json {
                printJSON(.array(users.map(\.json)))
            } else {
                Table.print(
                    ["ID", "EMAIL", "ROLE", "ACTIVE", "CREATED"],
                    users.map { [$0.id, $0.email, $0.role, $0.active ? "yes" : "no", formatTime($0.createdAt)] })
            }
        }
    }
}

struct UserShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one user (by id or email).")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "User id or email.") var user: String

    func run() async throws {
        try await Exit.guarding(options.json) {
            let record = try await resolveUser(user, options.admin)
            if options.json {
                printJSON(record.json)
            } else {
                Table.print(
                    ["FIELD", "VALUE"],
                    [
                        ["id", record.id], ["email", record.email], ["role", record.role],
                        ["active", record.active ? "yes" : "no"], ["created", formatTime(record.createdAt)],
                    ])
            }
        }
    }
}

/// The shared shape of the commands that change one user.
protocol UserUpdateCommand: AsyncParsableCommand {
    var options: GlobalOptions { get }
    var user: String { get }
    func change(_ admin: AuthClient.Admin, _ record: UserRecord) async throws -> UserRecord
}

extension UserUpdateCommand {
    func run() async throws {
        try await Exit.guarding(options.json) {
            let admin = options.admin
            let updated = try await change(admin, try await resolveUser(user, admin))
            if options.json {
                printJSON(updated.json)
            } else {
                print(
                    "user \(updated.id) \(updated.email): role \(updated.role), \(updated.active ? "active" : "inactive")"
                )
            }
        }
    }
}

struct UserSetRole: UserUpdateCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-role", abstract: "Change a user's role (takes effect on the next verification).")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "User id or email.") var user: String
    @Argument(help: "The new role.") var role: String

    func change(_ admin: AuthClient.Admin, _ record: UserRecord) async throws -> UserRecord {
        try await admin.updateUser(id: record.id, role: role)
    }
}

struct UserSetEmail: UserUpdateCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-email",
        abstract: "Change a user's email (for example to resolve two spellings of one address reported at start).")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "User id or email.") var user: String
    @Argument(help: "The new email.") var email: String

    func change(_ admin: AuthClient.Admin, _ record: UserRecord) async throws -> UserRecord {
        try await admin.updateUser(id: record.id, email: email)
    }
}

struct UserActivate: UserUpdateCommand {
    static let configuration = CommandConfiguration(commandName: "activate", abstract: "Allow a user to log in again.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "User id or email.") var user: String

    func change(_ admin: AuthClient.Admin, _ record: UserRecord) async throws -> UserRecord {
        try await admin.updateUser(id: record.id, active: true)
    }
}

struct UserDeactivate: UserUpdateCommand {
    static let configuration = CommandConfiguration(
        commandName: "deactivate", abstract: "Stop a user from logging in and end their sessions.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "User id or email.") var user: String

    func change(_ admin: AuthClient.Admin, _ record: UserRecord) async throws -> UserRecord {
        try await admin.updateUser(id: record.id, active: false)
    }
}

struct UserPasswd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passwd", abstract: "Set a user's password (asked twice); their sessions end.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "User id or email.") var user: String
    @Flag(help: "Read the password from standard input (one line).") var passwordStdin = false

    func run() async throws {
        let password = try PasswordInput.read(fromStdin: passwordStdin, confirm: true)
        try await Exit.guarding(options.json) {
            let admin = options.admin
            let record = try await resolveUser(user, admin)
            try await admin.setPassword(id: record.id, password: password)
            if options.json {
                printJSON(.object(["changed": .bool(true)]))
            } else {
                print("password changed for \(record.email)")
            }
        }
    }
}

struct UserDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a user and their sessions.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "User id or email.") var user: String

    func run() async throws {
        try await Exit.guarding(options.json) {
            let admin = options.admin
            let record = try await resolveUser(user, admin)
            try await admin.deleteUser(id: record.id)
            if options.json { printJSON(.object(["deleted": .bool(true)])) } else { print("deleted \(record.email)") }
        }
    }
}

struct UserMFA: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mfa", abstract: "The TOTP second factor.",
        discussion: """
            enroll, disable and recovery-codes act on the user logged in with 'authctl login'
            (they ask for that user's password and, but for enroll, a code); reset is an
            admin's, for a user who lost the authenticator and the recovery codes.
            """,
        subcommands: [UserMFAEnroll.self, UserMFADisable.self, UserMFARecoveryCodes.self, UserMFAReset.self])
}

/// The access token kept by `authctl login`, for the self-service commands.
private func loggedInToken() throws -> String {
    guard let token = TokenFile.read() else { throw ValidationError("not logged in: run 'authctl login EMAIL' first") }
    return token
}

struct UserMFAEnroll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Add a second factor to the logged-in user: shows the secret, asks for a code, prints recovery codes."
    )
    @OptionGroup var options: GlobalOptions
    @Flag(help: "Read the password, then the code, from standard input (one line each).") var passwordStdin = false

    func run() async throws {
        let token = try loggedInToken()
        let password = try PasswordInput.read(fromStdin: passwordStdin, confirm: false)
        try await Exit.guarding(options.json) {
            let client = options.client
            let enrolment = try await client.enrollSecondFactor(accessToken: token, currentPassword: password)
            if !options.json {
                print("Add this to your authenticator app (as a QR code, or type the secret):")
                print("  \(enrolment.uri)")
                print("  secret: \(enrolment.secret)")
            }
            let codes = try await client.confirmSecondFactor(
                accessToken: token, code: try PasswordInput.code(fromStdin: passwordStdin))
            if options.json {
                printJSON(
                    .object([
                        "secret": .string(enrolment.secret), "uri": .string(enrolment.uri),
                        "recovery_codes": .array(codes.map(JSONValue.string)),
                    ]))
            } else {
                print("Second factor enabled. Recovery codes (each works once; keep them somewhere safe):")
                for code in codes { print("  \(code)") }
            }
        }
    }
}

struct UserMFADisable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable", abstract: "Remove the logged-in user's second factor (password and a code).")
    @OptionGroup var options: GlobalOptions
    @Flag(help: "Read the password, then the code, from standard input (one line each).") var passwordStdin = false

    func run() async throws {
        let token = try loggedInToken()
        let password = try PasswordInput.read(fromStdin: passwordStdin, confirm: false)
        let code = try PasswordInput.code(fromStdin: passwordStdin)
        try await Exit.guarding(options.json) {
            try await options.client.disableSecondFactor(accessToken: token, currentPassword: password, code: code)
            if options.json { printJSON(.object(["disabled": .bool(true)])) } else { print("second factor disabled") }
        }
    }
}

struct UserMFARecoveryCodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recovery-codes",
        abstract: "New recovery codes for the logged-in user (password and a code); the old ones stop working.")
    @OptionGroup var options: GlobalOptions
    @Flag(help: "Read the password, then the code, from standard input (one line each).") var passwordStdin = false

    func run() async throws {
        let token = try loggedInToken()
        let password = try PasswordInput.read(fromStdin: passwordStdin, confirm: false)
        let code = try PasswordInput.code(fromStdin: passwordStdin)
        try await Exit.guarding(options.json) {
            let codes = try await options.client.replaceRecoveryCodes(
                accessToken: token, currentPassword: password, code: code)
            if options.json {
                printJSON(.object(["recovery_codes": .array(codes.map(JSONValue.string))]))
            } else {
                for code in codes { print(code) }
            }
        }
    }
}

struct UserMFAReset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset", abstract: "Remove a user's second factor (admin).")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "User id or email.") var user: String

    func run() async throws {
        try await Exit.guarding(options.json) {
            let admin = options.admin
            let record = try await resolveUser(user, admin)
            let removed = try await admin.resetSecondFactor(userID: record.id)
            if options.json {
                printJSON(.object(["reset": .bool(removed)]))
            } else {
                print(removed ? "second factor removed for \(record.email)" : "\(record.email) had no second factor")
            }
        }
    }
}
