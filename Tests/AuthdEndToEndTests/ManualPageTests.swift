import AuthCore
import Foundation
import Testing

/// The manual pages in man/ against the binaries: every authctl subcommand
/// (authctl.1 is generated from authctl's help by
/// scripts/generate-manpages.sh), every authd option, and every setting
/// with its default (authd(8) and authd.conf(5) are written by hand), so a
/// new one cannot be forgotten; and man renders each without a warning.
@Suite struct ManualPageTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func page(_ name: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent("man/" + name), encoding: .utf8)
    }

    /// A binary's `--experimental-dump-help` (swift-argument-parser's JSON
    /// description of its commands).
    static func help(_ binary: String) throws -> JSONObject {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--experimental-dump-help"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard let object = try JSONParser.parse(Array(data)).objectValue?["command"]?.objectValue else {
            throw DaemonError("no help from \(binary)")
        }
        return object
    }

    /// Every subcommand's path (`user mfa enroll`), depth first.
    static func subcommands(_ command: JSONObject, path: [String] = []) -> [[String]] {
        guard case .array(let children)? = command["subcommands"] else { return [] }
        return children.compactMap(\.objectValue).flatMap { child -> [[String]] in
            guard let name = child.string("commandName"), name != "help" else { return [] }
            return [path + [name]] + subcommands(child, path: path + [name])
        }
    }

    /// The `--long` names of a command's options.
    static func optionNames(_ command: JSONObject) -> [String] {
        guard case .array(let arguments)? = command["arguments"] else { return [] }
        return arguments.compactMap(\.objectValue).flatMap { argument -> [String] in
            guard case .array(let names)? = argument["names"] else { return [] }
            return names.compactMap(\.objectValue).filter { $0.string("kind") == "long" }.compactMap {
                $0.string("name")
            }
        }
    }

    @Test func authctlsPageHasEverySubcommandInItsPlace() throws {
        let binary = (DaemonProcess.binary as NSString).deletingLastPathComponent + "/authctl"
        let page = try Self.page("authctl.1")
        let commands = Self.subcommands(try Self.help(binary))
        #expect(commands.contains(["user", "mfa", "enroll"]))
        // Each appears as an item, after its parent's.
        for path in commands {
            var position = page.startIndex
            for name in path {
                guard let found = page.range(of: "\n.It Em \(name)\n", range: position..<page.endIndex) else {
                    Issue.record("authctl.1 lacks '\(path.joined(separator: " "))': run scripts/generate-manpages.sh")
                    break
                }
                position = found.upperBound
            }
        }
        #expect(page.contains("Exit codes"))
    }

    @Test func authdsPageHasEveryOptionThatIsNotASetting() throws {
        let page = try Self.page("authd.8")
        let settings = Set(SettingsResolver.names.map(SettingsResolver.flagName))
        let options = Self.optionNames(try Self.help(DaemonProcess.binary)).filter { !settings.contains($0) }
        #expect(options.contains("listen") && options.contains("config-dir"))
        for option in options where option != "help" && option != "experimental-dump-help" && option != "version" {
            #expect(page.contains(".It Fl -\(option)"), "authd.8 lacks --\(option)")
        }
        for section in ["OPTIONS", "CREDENTIALS", "ENVIRONMENT", "SIGNALS", "FILES", "EXIT STATUS"] {
            #expect(page.contains(".Sh \(section)\n"), "authd.8 lacks \(section)")
        }
        for credential in ["access-key", "refresh-key", "key-encryption-key", "database-password"] {
            #expect(page.contains(credential), "authd.8 lacks the credential \(credential)")
        }
    }

    /// Each setting is an item whose text gives its default, as the daemon
    /// has it (but for those that depend on the host).
    @Test func authdConfsPageHasEverySettingWithItsDefault() throws {
        let page = try Self.page("authd.conf.5")
        let defaults = Settings(cores: 2)
        let hostDependent: Set = ["workers", "instance_name", "admin_uids", "admin_groups", "database_url"]
        for definition in SettingsResolver.definitions {
            guard let start = page.range(of: "\n.It Cm \(definition.name)\n") else {
                Issue.record("authd.conf.5 lacks the setting \(definition.name)")
                continue
            }
            let rest = page[start.upperBound...]
            let item = rest[..<(rest.range(of: "\n.It ")?.lowerBound ?? rest.endIndex)]
            #expect(item.contains("Range:"), "authd.conf.5: \(definition.name) has no range")
            if !hostDependent.contains(definition.name) {
                let value = definition.render(defaults)
                #expect(
                    item.contains("Default:\n.Li \(value) ."), "authd.conf.5: \(definition.name)'s default is \(value)")
            }
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/man")))
    func manRendersEveryPageWithoutAWarning() throws {
        for name in ["authd.8", "authd.conf.5", "authctl.1"] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/man")
            process.arguments = ["--warnings", "-l", "-Tutf8", Self.root.appendingPathComponent("man/" + name).path]
            process.environment = ["PATH": "/usr/bin:/bin", "MANWIDTH": "80"]
            let output = Pipe()
            let errors = Pipe()
            process.standardOutput = output
            process.standardError = errors
            try process.run()
            let rendered = output.fileHandleForReading.readDataToEndOfFile()
            let warnings = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "man \(name)")
            #expect(rendered.count > 1_000, "man \(name) rendered \(rendered.count) bytes")
            #expect(warnings.isEmpty, "man \(name): \(warnings)")
        }
    }
}
