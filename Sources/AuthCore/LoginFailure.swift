/// Why a login was refused, for the log only (the answer is always
/// `401 invalid_credentials`): the first of the checks that failed.
public enum LoginFailure {
    public static func reason(emailValid: Bool, userFound: Bool, passwordUsable: Bool, matched: Bool) -> String {
        if !emailValid { return "invalid_email" }
        if !userFound { return "unknown_user" }
        if !passwordUsable { return "password_too_long" }
        if !matched { return "wrong_password" }
        return "account_inactive"
    }
}
