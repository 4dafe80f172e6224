import ArgumentParser

/// `authctl`: operate authd from the shell, through AuthClient.
@main
struct AuthctlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authctl",
        abstract: "Operate authd, the local authentication daemon.",
        discussion: """
            Admin commands work as root (peer credentials), as a configured admin
            uid/group, or after 'authctl login' as an admin user.

            Exit codes: 0 done; 64 usage error; 2 refused by authd (forbidden, not
            found, invalid input, wrong credentials, rate limited); 69 authd
            unreachable or not answering; 1 anything else.

            Examples:
              authctl status
              authctl user add alice@example.com --role editor
              authctl user list --json
              authctl session revoke --user alice@example.com
            """,
        subcommands: [
            UserCommand.self, SessionCommand.self, KeysCommand.self, StatusCommand.self, MetricsCommand.self,
            LoginCommand.self, LogoutCommand.self, VerifyCommand.self, BackupCommand.self,
        ])

    /// Operators type the global options before the subcommand as well as
    /// after it (`authctl --socket PATH status`); ArgumentParser takes a
    /// subcommand's options only after its name, so those are moved there.
    static func main() async {
        let arguments = GlobalOptions.movedAfterSubcommand(Array(CommandLine.arguments.dropFirst()))
        do {
            var command = try parseAsRoot(arguments)
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
