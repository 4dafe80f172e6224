import ArgumentParser
import AuthClient
import AuthJSON
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(help: "The daemon's socket (default: $AUTHD_SOCKET, else /run/authd/authd.sock).")
    var socket: String?

    @Flag(help: "Print JSON for scripts instead of tables.")
    var json = false

    var socketPath: String {
        socket ?? ProcessInfo.processInfo.environment["AUTHD_SOCKET"] ?? AuthClient.defaultSocketPath
    }

    var client: AuthClient { AuthClient(socketPath: socketPath) }

    /// The admin surface, with the token saved by `authctl login` if any.
    var admin: AuthClient.Admin { client.admin(accessToken: TokenFile.read()) }

    /// `arguments` with the global options given before the subcommand
    /// (`--socket PATH`, `--socket=PATH`, `--json`) moved after its path
    /// (`user add`), before any option of its own. Anything else before
    /// the subcommand (`--help`, a mistake) stays where it is, for the
    /// parser to answer.
    static func movedAfterSubcommand(_ arguments: [String]) -> [String] {
        var moved: [String] = []
        var index = 0
        scan: while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--socket" where index + 1 < arguments.count:
                moved += [argument, arguments[index + 1]]
                index += 2
            case "--json":
                moved.append(argument)
                index += 1
            case _ where argument.hasPrefix("--socket="):
                moved.append(argument)
                index += 1
            default:
                break scan
            }
        }
        guard !moved.isEmpty, index < arguments.count else { return arguments }
        // Right after the subcommand's path (before its first option or a
        // `--`): the same option given after the subcommand still wins.
        var rest = Array(arguments[index...])
        let end = rest.firstIndex { $0.hasPrefix("-") } ?? rest.endIndex
        rest.insert(contentsOf: moved, at: end)
        return rest
    }
}

/// Exit codes: 0 done, 64 usage error, 2 refused by authd (forbidden, not
/// found, invalid input, wrong credentials…), 69 daemon unreachable or not
/// answering, 1 anything else.
enum Exit {
    static let refused: Int32 = 2
    static let unavailable: Int32 = 69

    /// Runs a command body, turning errors into a message and an exit code.
    static func guarding(_ json: Bool, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as AuthError {
            let code: Int32
            switch error {
            case .unreachable, .timeout: code = unavailable
            case .badResponse, .internalError: code = 1
            default: code = refused
            }
            if json {
                var object: JSONObject = ["error": .string(error.reason ?? "\(error)")]
                if let retry = error.retryAfter { object["retry_after"] = .int(retry) }
                print(JSONWriter.encodeString(.object(object)))
            }
            FileHandle.standardError.write(Data("authctl: \(describe(error))\n".utf8))
            throw ExitCode(code)
        }
    }

    static func describe(_ error: AuthError) -> String {
        switch error {
        case .unreachable(let why): "cannot reach authd: \(why)"
        case .timeout: "authd did not answer in time"
        case .forbidden: "forbidden: run as root or an admin, or 'authctl login' as an admin user"
        case .notFound: "no such user or session"
        case .invalidParams(let field): "invalid \(field ?? "parameter")"
        case .rateLimited(let retry), .busy(let retry): "\(error.reason!): retry in \(retry ?? 1) s"
        case .unsupported:
            "unsupported by this daemon's store: a shared PostgreSQL database is backed up with pg_dump (see the README)"
        default: error.reason?.replacingOccurrences(of: "_", with: " ") ?? "\(error)"
        }
    }
}

/// Where `authctl login` keeps an admin's access token: a 0600 file in a
/// 0700 folder under $XDG_RUNTIME_DIR (a per-user tmpfs), never argv.
enum TokenFile {
    static var path: String? {
        guard let runtime = ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"], !runtime.isEmpty else {
            return nil
        }
        return runtime + "/authctl/token"
    }

    static func read() -> String? {
        guard let path, let data = FileManager.default.contents(atPath: path) else { return nil }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return token.isEmpty ? nil : token
    }

    static func write(_ token: String) throws {
        guard let path else { throw ValidationError("XDG_RUNTIME_DIR is not set; cannot keep the token") }
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot write \(path)") }
        fchmod(fd, 0o600)
        let bytes = Array(token.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    static func remove() {
        if let path { unlink(path) }
    }
}

/// Passwords come from the terminal without echo, or from stdin with
/// `--password-stdin`; never from the command line.
enum PasswordInput {
    static func read(fromStdin: Bool, confirm: Bool) throws -> String {
        if fromStdin {
            guard let line = Swift.readLine(strippingNewline: true) else {
                throw ValidationError("no password on standard input")
            }
            return line
        }
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard tty >= 0 else { throw ValidationError("no terminal to ask for the password: use --password-stdin") }
        defer { close(tty) }
        let first = try prompt("Password: ", tty: tty)
        if confirm {
            let second = try prompt("Repeat password: ", tty: tty)
            guard first == second else { throw ValidationError("the passwords do not match") }
        }
        return first
    }

    /// A second-factor code: the next line of stdin with `fromStdin` (after
    /// the password's), else asked on the terminal.
    static func code(fromStdin: Bool) throws -> String {
        if fromStdin {
            guard let line = Swift.readLine(strippingNewline: true), !line.isEmpty else {
                throw ValidationError("no code on standard input (the line after the password)")
            }
            return line
        }
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard tty >= 0 else { throw ValidationError("no terminal to ask for the code: use --password-stdin") }
        defer { close(tty) }
        return try prompt("Code (or a recovery code): ", tty: tty)
    }

    private static func prompt(_ text: String, tty: Int32) throws -> String {
        _ = text.withCString { write(tty, $0, strlen($0)) }
        var saved = termios()
        tcgetattr(tty, &saved)
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(tty, TCSAFLUSH, &silent)
        defer {
            tcsetattr(tty, TCSAFLUSH, &saved)
            _ = write(tty, "\n", 1)
        }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while Glibc.read(tty, &byte, 1) == 1 {
            if byte == 0x0A || byte == 0x0D { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Plain aligned columns for people.
enum Table {
    static func print(_ headers: [String], _ rows: [[String]]) {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        Swift.print(line(headers))
        for row in rows { Swift.print(line(row)) }
    }
}

func formatTime(_ seconds: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
}

extension UserRecord {
    var json: JSONValue {
        .object([
            "id": .string(id), "email": .string(email), "role": .string(role), "active": .bool(active),
            "created_at": .int(createdAt), "mfa_enabled": .bool(mfaEnabled),
        ])
    }
}

/// A user named on the command line by id (digits) or email.
func resolveUser(_ reference: String, _ admin: AuthClient.Admin) async throws -> UserRecord {
    if reference.allSatisfy(\.isNumber) { return try await admin.user(id: reference) }
    return try await admin.user(email: reference)
}

func printJSON(_ value: JSONValue) { print(JSONWriter.encodeString(value)) }

/// Standard output written in full or not at all as far as the exit code
/// tells: `authctl metrics > file && mv file …` must not move a file cut
/// short by a full disk.
enum StandardOutput {
    struct WriteFailed: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "cannot write standard output: \(String(cString: strerror(errno)))" }
    }

    static func write(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw WriteFailed(errno: errno)
            }
            bytes = bytes.dropFirst(written)
        }
    }
}
