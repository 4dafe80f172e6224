import AuthCore
import AuthProtocol

/// What one backup holds: the database copy and the key files, each with
/// its size and SHA-256, as `sys.backup` answers and as the backup's
/// `MANIFEST.json` records (which `authd restore` checks every file
/// against before it copies one).
public struct StateBackup: Sendable, Equatable {
    public struct File: Sendable, Equatable {
        /// Relative to the backup's folder, as in the state directory
        /// (`authd.sqlite3`, `keys/refresh-key`, …).
        public var path: String
        public var bytes: Int64
        /// Lower-case hex.
        public var sha256: String

        public init(path: String, bytes: Int64, sha256: String) {
            self.path = path
            self.bytes = bytes
            self.sha256 = sha256
        }
    }

    /// The manifest's format; a restore refuses one it does not know.
    public static let format = 1
    public static let manifestName = BackupLayout.manifest

    /// Where the daemon wrote it (absolute, as the daemon sees it).
    public var directory: String
    public var createdAt: Int64
    /// The authd version that wrote it.
    public var version: String
    /// The database's last schema migration (`v4`, …).
    public var schema: String?
    public var files: [File]
    /// Keys this daemon was given from outside its state directory
    /// (credentials, environment variables), so not in the backup: the
    /// operator keeps those with the credentials they came from.
    public var notIncluded: [String]

    public init(
        directory: String, createdAt: Int64, version: String, schema: String?, files: [File],
        notIncluded: [String]
    ) {
        self.directory = directory
        self.createdAt = createdAt
        self.version = version
        self.schema = schema
        self.files = files
        self.notIncluded = notIncluded
    }

    public var totalBytes: Int64 { files.reduce(0) { $0 + $1.bytes } }

    /// `sys.backup`'s result.
    public var resultJSON: JSONValue {
        var object = manifestObject
        object["directory"] = .string(directory)
        object["bytes"] = .int(totalBytes)
        return .object(object)
    }

    /// `MANIFEST.json`: everything but where it was written (a backup is
    /// moved).
    public var manifestJSON: JSONValue { .object(manifestObject) }

    private var manifestObject: JSONObject {
        var object: JSONObject = [
            "format": .int(Self.format), "created_at": .int(createdAt), "version": .string(version),
            "files": .array(
                files.map {
                    .object(["path": .string($0.path), "bytes": .int($0.bytes), "sha256": .string($0.sha256)])
                }),
            "not_included": .array(notIncluded.map(JSONValue.string)),
        ]
        if let schema { object["schema"] = .string(schema) }
        return object
    }

    public struct InvalidManifest: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads a manifest; `directory` is where it was found. Refuses an
    /// unknown format and any path that could leave the folder (absolute,
    /// `..`, empty components), so a tampered manifest cannot make a
    /// restore write outside the state directory.
    public static func parseManifest(_ value: JSONValue, directory: String) throws(InvalidManifest) -> StateBackup {
        guard let object = value.objectValue else { throw InvalidManifest(description: "not a JSON object") }
        guard object["format"]?.int64Value == Int64(format) else {
            throw InvalidManifest(description: "unknown format (this authd reads format \(format))")
        }
        guard let createdAt = object["created_at"]?.int64Value, let version = object["version"]?.stringValue,
            case .array(let entries)? = object["files"]
        else { throw InvalidManifest(description: "created_at, version or files missing") }
        var files: [File] = []
        var seen = Set<String>()
        for entry in entries {
            guard let file = entry.objectValue, let path = file["path"]?.stringValue,
                let bytes = file["bytes"]?.int64Value, bytes >= 0, let digest = file["sha256"]?.stringValue,
                digest.utf8.count == 64,
                digest.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
            else { throw InvalidManifest(description: "a file entry is malformed") }
            guard BackupLayout.isFilePath(path) else {
                throw InvalidManifest(description: "unsafe path \(BackupLayout.printable(path))")
            }
            guard seen.insert(path).inserted else { throw InvalidManifest(description: "\(path) listed twice") }
            files.append(File(path: path, bytes: bytes, sha256: digest))
        }
        guard files.contains(where: { $0.path == BackupLayout.database }) else {
            throw InvalidManifest(description: "no database (authd.sqlite3) listed")
        }
        var notIncluded: [String] = []
        if case .array(let names)? = object["not_included"] { notIncluded = names.compactMap(\.stringValue) }
        return StateBackup(
            directory: directory, createdAt: createdAt, version: version, schema: object["schema"]?.stringValue,
            files: files, notIncluded: notIncluded)
    }
}
