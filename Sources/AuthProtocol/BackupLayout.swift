/// The names a backup (`sys.backup`) may hold, for the daemon that writes
/// it, `authctl` that collects it and `authd restore` that reads it: one
/// rule, so no tool follows a path the others would refuse.
public enum BackupLayout {
    public static let database = "authd.sqlite3"
    public static let keysFolder = "keys"
    public static let manifest = "MANIFEST.json"
    /// The folder the daemon writes backups into, in its state directory.
    public static let folder = "backups"

    /// `authd.sqlite3` or `keys/NAME` (NAME printable ASCII, no `/`, not
    /// `.` or `..`): nothing that could leave the backup's folder.
    public static func isFilePath(_ path: String) -> Bool {
        if path == database { return true }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == keysFolder else { return false }
        return isKeyName(String(parts[1]))
    }

    public static func isKeyName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && name.utf8.count <= 255
            && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x2F }
    }

    /// A backup folder's name as the daemon makes it: `YYYYMMDDTHHMMSSZ-`
    /// and eight lower-case hex digits.
    public static func isFolderName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count == 25, bytes[8] == 0x54, bytes[15] == 0x5A, bytes[16] == 0x2D else { return false }
        let digits = bytes[0..<8] + bytes[9..<15]
        return digits.allSatisfy { (0x30...0x39).contains($0) }
            && bytes[17...].allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Text from a backup or a daemon's answer, safe to print on a terminal
    /// (control characters replaced).
    public static func printable(_ text: String) -> String {
        String(
            String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }))
    }
}
