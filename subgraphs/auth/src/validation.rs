//! Input rules for emails and passwords. Each failure names its field.

use kit::ApiError;
use kit::text::{self, Lines};

pub const EMAIL_MAX: usize = 254;
pub const PASSWORD_MIN_BYTES: usize = 8;
/// bcrypt reads at most 72 bytes; longer passwords would be silently truncated.
pub const PASSWORD_MAX_BYTES: usize = 72;

/// Trims, lower-cases and checks an email address; returns the canonical form.
pub fn email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(ApiError::invalid("email", "Email is required"));
    }
    if email.len() > EMAIL_MAX {
        return Err(ApiError::invalid("email", format!("Email must be at most {EMAIL_MAX} characters")));
    }
    text::refuse_controls("email", "Email", &email, Lines::Single)?;
    if !is_valid_email(&email) {
        return Err(ApiError::invalid("email", "Must be a valid email address"));
    }
    Ok(email)
}

fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok
}

/// The rules for a password being set (register, changePassword).
pub fn new_password(raw: &str, field: &str) -> Result<(), ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid(field, "Password is required"));
    }
    if raw.len() < PASSWORD_MIN_BYTES {
        return Err(ApiError::invalid(field, format!("Password must be at least {PASSWORD_MIN_BYTES} characters")));
    }
    if raw.len() > PASSWORD_MAX_BYTES {
        return Err(ApiError::invalid(field, format!("Password must be at most {PASSWORD_MAX_BYTES} bytes")));
    }
    text::refuse_controls(field, "Password", raw, Lines::Single)?;
    if !raw.chars().any(char::is_alphabetic) {
        return Err(ApiError::invalid(field, "Password must contain at least one letter"));
    }
    if !raw.chars().any(|c| c.is_ascii_digit()) {
        return Err(ApiError::invalid(field, "Password must contain at least one number"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: ApiError) -> String {
        match err {
            ApiError::BadUserInput { field, .. } => field.unwrap_or_default(),
            other => panic!("expected BAD_USER_INPUT, got {other:?}"),
        }
    }

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(email("  Alice@Example.COM ").unwrap(), "alice@example.com");
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in ["", "not-an-email", "a@b", "a@@b.com", "a b@c.com", "@x.com", "a@-x.com", "a..b@x.com", "a@x.c0m"] {
            assert_eq!(field_of(email(bad).unwrap_err()), "email", "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(email(&long).is_err());
    }

    #[test]
    fn control_characters_are_refused_in_emails_and_new_passwords() {
        for bad in ["a\u{0}@example.com", "a@exam\tple.com", "a\u{85}b@example.com"] {
            let err = email(bad).unwrap_err();
            assert!(format!("{err:?}").contains("control characters"), "{bad:?}: {err:?}");
        }
        for bad in ["abcdefg1\u{0}", "abcd\tefg1", "abc\u{1b}defg1", "abcdefg1\n"] {
            assert_eq!(field_of(new_password(bad, "password").unwrap_err()), "password", "{bad:?}");
        }
        assert!(new_password("pässwörd 1 ✓", "password").is_ok());
    }

    #[test]
    fn password_rules() {
        assert!(new_password("abcdefg1", "password").is_ok());
        assert!(new_password("ab1", "password").is_err());
        assert!(new_password("abcdefgh", "password").is_err());
        assert!(new_password("12345678", "password").is_err());
        assert!(new_password(&format!("a1{}", "x".repeat(70)), "password").is_ok());
        assert!(new_password(&format!("a1{}", "x".repeat(71)), "password").is_err());
        assert_eq!(field_of(new_password("", "newPassword").unwrap_err()), "newPassword");
    }
}
