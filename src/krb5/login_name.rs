//! Which Kerberos principal a login form's user name stands for (`MemSessionKerberosRealm`).
//! Users type `alice` or `alice@REALM`; only the configured realm is ever asked, so a form
//! cannot send the password to another realm's KDC. The realm may be typed in any case (people
//! used to Active Directory type `alice@example.com`): the principal takes the configured
//! spelling, which is the realm the KDC is asked about either way.

#[derive(Debug, PartialEq, Eq)]
pub enum NameRefusal {
    Empty,
    /// `alice@OTHER.REALM`: not the realm this login serves.
    OtherRealm,
    /// Characters libkrb5 would read as a realm separator or an escape, or control characters.
    Unsafe,
}

/// The principal to ask `realm`'s KDC for.
pub fn principal_for(user: &str, realm: &str) -> Result<String, NameRefusal> {
    let name = match user.rsplit_once('@') {
        Some((name, typed)) if typed.eq_ignore_ascii_case(realm) => name,
        Some(_) => return Err(NameRefusal::OtherRealm),
        None => user,
    };
    if name.is_empty() {
        return Err(NameRefusal::Empty);
    }
    if name.contains(['@', '\\']) || name.chars().any(char::is_control) {
        return Err(NameRefusal::Unsafe);
    }
    Ok(format!("{name}@{realm}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REALM: &str = "EXAMPLE.TEST";

    #[test]
    fn a_bare_name_is_qualified_with_the_realm() {
        assert_eq!(principal_for("alice", REALM).unwrap(), "alice@EXAMPLE.TEST");
        assert_eq!(
            principal_for("alice/admin", REALM).unwrap(),
            "alice/admin@EXAMPLE.TEST"
        );
    }

    #[test]
    fn the_configured_realm_may_be_typed() {
        assert_eq!(
            principal_for("alice@EXAMPLE.TEST", REALM).unwrap(),
            "alice@EXAMPLE.TEST"
        );
    }

    #[test]
    fn the_realm_may_be_typed_in_any_case_and_takes_the_configured_spelling() {
        for user in ["alice@example.test", "alice@Example.Test"] {
            assert_eq!(
                principal_for(user, REALM).unwrap(),
                "alice@EXAMPLE.TEST",
                "{user}"
            );
        }
    }

    #[test]
    fn another_realm_is_never_asked() {
        for user in ["alice@EVIL.TEST", "alice@example.test.evil", "alice@"] {
            assert_eq!(
                principal_for(user, REALM),
                Err(NameRefusal::OtherRealm),
                "{user}"
            );
        }
    }

    #[test]
    fn names_libkrb5_would_parse_differently_are_refused() {
        assert_eq!(principal_for("", REALM), Err(NameRefusal::Empty));
        assert_eq!(
            principal_for("@EXAMPLE.TEST", REALM),
            Err(NameRefusal::Empty)
        );
        for user in [
            "a@b@EXAMPLE.TEST",
            "alice\\@EXAMPLE.TEST",
            "evil\\/x",
            "ali\nce",
            "alice\0",
        ] {
            assert_eq!(
                principal_for(user, REALM),
                Err(NameRefusal::Unsafe),
                "{user:?}"
            );
        }
    }
}
