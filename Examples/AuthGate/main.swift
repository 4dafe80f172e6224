// authd-gate: the few lines a local service needs to guard an action with
// authd. Give it a bearer token and a role; it answers allow or deny.
//
//   authd-gate "$TOKEN" editor && do-the-editing
//
// Exit status 0 means allow, 1 deny, 2 authd could not be asked.
import AuthClient
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: authd-gate TOKEN ROLE\n".utf8))
    exit(2)
}
let socket = ProcessInfo.processInfo.environment["AUTHD_SOCKET"] ?? AuthClient.defaultSocketPath

// The five lines: one client, one verify with the role, and the answer.
let auth = AuthClient(socketPath: socket)
do {
    let verified = try await auth.verify(token: arguments[1], requiredRole: arguments[2])
    print("allow: \(verified.user.email) (\(verified.user.role))")
    exit(0)
} catch let error as AuthError where error.reason != nil {
    print("deny: \(error.reason!)")
    exit(1)
} catch {
    print("error: \(error)")
    exit(2)
}
