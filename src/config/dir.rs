//! Directory-scope configuration (`<Location>`, `<Directory>`, .htaccess with AuthConfig).
//!
//! Every field is `None` until a directive sets it; merging takes the inner value when set
//! and the outer one otherwise; defaults are applied only when a value is read. So an inner
//! section can override or switch off anything an outer one set, and an unset field inherits.
use std::time::Duration;

use super::duration::parse_duration;
use super::values::{self, Unauthenticated};
use super::{directive_error, inherit};
use crate::flow::login_budget::{self, Limits};
use crate::flow::mint_limit;
use crate::web::cookie::SameSite;

pub const DEFAULT_COOKIE_NAME: &str = "memsession";
pub const DEFAULT_COOKIE_PATH: &str = "/";
pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(3600);
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(8 * 3600);
pub const DEFAULT_LOGIN_URL: &str = "/login";
pub const DEFAULT_LOGOUT_REDIRECT: &str = "/";
pub const DEFAULT_DELEGATION_DIR: &str = "/run/memsession/ccache";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DirConfig {
    pub enabled: Option<bool>,
    pub cookie_name: Option<String>,
    pub cookie_path: Option<String>,
    pub cookie_domain: Option<String>,
    pub cookie_same_site: Option<SameSite>,
    pub cookie_secure: Option<bool>,
    pub cookie_persistent: Option<bool>,
    pub inactivity_timeout: Option<Duration>,
    pub max_lifetime: Option<Duration>,
    pub cap_to_credentials: Option<bool>,
    pub unauthenticated: Option<Unauthenticated>,
    pub login_url: Option<String>,
    pub logout_redirect: Option<String>,
    pub logout_allow_get: Option<bool>,
    /// `Some(None)` is an explicit `MemSessionUserHeader None` that switches an outer
    /// section's header off.
    pub user_header: Option<Option<String>>,
    /// The header an outer section named and this one switched off with `None`: backends
    /// there may still trust it, so client copies are still removed.
    pub switched_off_user_header: Option<String>,
    pub delegation: Option<bool>,
    pub delegation_dir: Option<String>,
    pub password_providers: Option<Vec<String>>,
    pub kerberos_realm: Option<String>,
    /// A keytab name as libkrb5 reads it (`FILE:/path`).
    pub kerberos_keytab: Option<String>,
    pub csrf_check: Option<bool>,
    pub trusted_origins: Option<Vec<String>>,
    pub extend: Option<bool>,
    /// `Some(None)`: an explicit `Off`.
    pub login_limit_user: Option<Option<u32>>,
    pub login_limit_address: Option<Option<u32>>,
    pub login_limit_window: Option<Duration>,
    /// Sessions `MemSession On` may mint per user per minute; `Some(None)`: an explicit `Off`.
    pub mint_limit: Option<Option<u32>>,
    pub strip_cookie: Option<bool>,
}

/// The most failures a login budget may allow per window.
const MAX_LOGIN_LIMIT: u32 = 100_000;

/// `Off`, or a number of failed logins per window.
fn parse_login_limit(directive: &str, arg: &str) -> Result<Option<u32>, String> {
    parse_limit(directive, arg, "failed logins")
}

/// `Off`, or a number of `what` from 1 to [`MAX_LOGIN_LIMIT`].
fn parse_limit(directive: &str, arg: &str, what: &str) -> Result<Option<u32>, String> {
    if arg.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match arg.parse::<u32>() {
        Ok(n) if (1..=MAX_LOGIN_LIMIT).contains(&n) => Ok(Some(n)),
        _ => Err(directive_error(
            directive,
            format!("'{arg}' is not Off or a number of {what} from 1 to {MAX_LOGIN_LIMIT}"),
        )),
    }
}

fn parse_flag(directive: &str, arg: &str) -> Result<bool, String> {
    match arg {
        "On" | "on" | "ON" => Ok(true),
        "Off" | "off" | "OFF" => Ok(false),
        _ => Err(directive_error(
            directive,
            format!("'{arg}' is not On or Off"),
        )),
    }
}

impl DirConfig {
    /// Applies one directive. `arg` is one word; ITERATE directives are called once per word.
    pub fn set(&mut self, directive: &str, arg: &str) -> Result<(), String> {
        let named = |detail: String| directive_error(directive, detail);
        let flag = || parse_flag(directive, arg);
        let duration = || parse_duration(arg).map_err(named);
        match directive {
            "MemSession" => self.enabled = Some(flag()?),
            "MemSessionCookieName" => {
                self.cookie_name = Some(values::parse_cookie_name(arg).map_err(named)?)
            }
            "MemSessionCookiePath" => {
                self.cookie_path = Some(values::parse_cookie_attribute(arg).map_err(named)?)
            }
            "MemSessionCookieDomain" => {
                self.cookie_domain = Some(values::parse_cookie_attribute(arg).map_err(named)?)
            }
            "MemSessionCookieSameSite" => {
                self.cookie_same_site = Some(values::parse_same_site(arg).map_err(named)?)
            }
            "MemSessionCookieSecure" => self.cookie_secure = Some(flag()?),
            "MemSessionCookiePersistent" => self.cookie_persistent = Some(flag()?),
            "MemSessionInactivityTimeout" => self.inactivity_timeout = Some(duration()?),
            "MemSessionMaxLifetime" => self.max_lifetime = Some(duration()?),
            "MemSessionCapToCredentials" => self.cap_to_credentials = Some(flag()?),
            "MemSessionUnauthenticated" => {
                self.unauthenticated = Some(values::parse_unauthenticated(arg).map_err(named)?)
            }
            "MemSessionLoginURL" => {
                self.login_url = Some(values::parse_url_or_path(arg).map_err(named)?)
            }
            "MemSessionLogoutRedirect" => {
                self.logout_redirect = Some(values::parse_url_or_path(arg).map_err(named)?)
            }
            "MemSessionLogoutAllowGet" => self.logout_allow_get = Some(flag()?),
            "MemSessionUserHeader" => {
                self.user_header = Some(values::parse_header_name(arg).map_err(named)?)
            }
            "MemSessionDelegation" => self.delegation = Some(flag()?),
            "MemSessionDelegationDir" => {
                let dir = values::parse_absolute_path(arg).map_err(named)?;
                values::check_private_dir(std::path::Path::new(&dir)).map_err(named)?;
                self.delegation_dir = Some(dir)
            }
            "MemSessionPasswordProvider" => {
                let provider = values::parse_provider_name(arg).map_err(named)?;
                self.password_providers
                    .get_or_insert_with(Vec::new)
                    .push(provider);
            }
            "MemSessionKerberosRealm" => {
                self.kerberos_realm = Some(values::parse_realm(arg).map_err(named)?)
            }
            "MemSessionKerberosKeytab" => {
                let path = arg.strip_prefix("FILE:").unwrap_or(arg);
                let path = values::parse_absolute_path(path).map_err(named)?;
                self.kerberos_keytab = Some(format!("FILE:{path}"))
            }
            "MemSessionCSRFCheck" => self.csrf_check = Some(flag()?),
            "MemSessionTrustedOrigin" => {
                let origin = values::parse_origin(arg).map_err(named)?;
                self.trusted_origins
                    .get_or_insert_with(Vec::new)
                    .push(origin);
            }
            "MemSessionExtend" => self.extend = Some(flag()?),
            "MemSessionLoginLimitUser" => {
                self.login_limit_user = Some(parse_login_limit(directive, arg)?)
            }
            "MemSessionLoginLimitAddress" => {
                self.login_limit_address = Some(parse_login_limit(directive, arg)?)
            }
            "MemSessionLoginLimitWindow" => {
                let window = duration()?;
                if window < Duration::from_secs(1) || window > login_budget::MAX_WINDOW {
                    return Err(named(format!(
                        "'{arg}' is not a window from 1s to {}s",
                        login_budget::MAX_WINDOW.as_secs()
                    )));
                }
                self.login_limit_window = Some(window)
            }
            "MemSessionMintLimit" => {
                self.mint_limit = Some(parse_limit(directive, arg, "sessions per minute")?)
            }
            "MemSessionStripCookie" => self.strip_cookie = Some(flag()?),
            _ => return Err(directive_error(directive, "is not a directory directive")),
        }
        Ok(())
    }

    /// `self` is the outer section, `inner` the one nested in it.
    pub fn merge(&self, inner: &DirConfig) -> DirConfig {
        DirConfig {
            enabled: inherit(&inner.enabled, &self.enabled),
            cookie_name: inherit(&inner.cookie_name, &self.cookie_name),
            cookie_path: inherit(&inner.cookie_path, &self.cookie_path),
            cookie_domain: inherit(&inner.cookie_domain, &self.cookie_domain),
            cookie_same_site: inherit(&inner.cookie_same_site, &self.cookie_same_site),
            cookie_secure: inherit(&inner.cookie_secure, &self.cookie_secure),
            cookie_persistent: inherit(&inner.cookie_persistent, &self.cookie_persistent),
            inactivity_timeout: inherit(&inner.inactivity_timeout, &self.inactivity_timeout),
            max_lifetime: inherit(&inner.max_lifetime, &self.max_lifetime),
            cap_to_credentials: inherit(&inner.cap_to_credentials, &self.cap_to_credentials),
            unauthenticated: inherit(&inner.unauthenticated, &self.unauthenticated),
            login_url: inherit(&inner.login_url, &self.login_url),
            logout_redirect: inherit(&inner.logout_redirect, &self.logout_redirect),
            logout_allow_get: inherit(&inner.logout_allow_get, &self.logout_allow_get),
            user_header: inherit(&inner.user_header, &self.user_header),
            switched_off_user_header: match (&inner.user_header, self.user_header()) {
                (Some(None), Some(outer)) => Some(outer.to_string()),
                (Some(Some(_)), _) => None,
                _ => inherit(
                    &inner.switched_off_user_header,
                    &self.switched_off_user_header,
                ),
            },
            delegation: inherit(&inner.delegation, &self.delegation),
            delegation_dir: inherit(&inner.delegation_dir, &self.delegation_dir),
            password_providers: inherit(&inner.password_providers, &self.password_providers),
            kerberos_realm: inherit(&inner.kerberos_realm, &self.kerberos_realm),
            kerberos_keytab: inherit(&inner.kerberos_keytab, &self.kerberos_keytab),
            csrf_check: inherit(&inner.csrf_check, &self.csrf_check),
            trusted_origins: inherit(&inner.trusted_origins, &self.trusted_origins),
            extend: inherit(&inner.extend, &self.extend),
            login_limit_user: inherit(&inner.login_limit_user, &self.login_limit_user),
            login_limit_address: inherit(&inner.login_limit_address, &self.login_limit_address),
            login_limit_window: inherit(&inner.login_limit_window, &self.login_limit_window),
            mint_limit: inherit(&inner.mint_limit, &self.mint_limit),
            strip_cookie: inherit(&inner.strip_cookie, &self.strip_cookie),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled.unwrap_or(false)
    }
    pub fn cookie_name(&self) -> &str {
        self.cookie_name.as_deref().unwrap_or(DEFAULT_COOKIE_NAME)
    }
    pub fn cookie_path(&self) -> &str {
        self.cookie_path.as_deref().unwrap_or(DEFAULT_COOKIE_PATH)
    }
    pub fn cookie_domain(&self) -> Option<&str> {
        self.cookie_domain.as_deref()
    }
    pub fn cookie_same_site(&self) -> SameSite {
        self.cookie_same_site.unwrap_or(SameSite::Lax)
    }
    pub fn cookie_secure(&self) -> bool {
        self.cookie_secure.unwrap_or(true)
    }
    pub fn cookie_persistent(&self) -> bool {
        self.cookie_persistent.unwrap_or(false)
    }
    pub fn inactivity_timeout(&self) -> Duration {
        self.inactivity_timeout
            .unwrap_or(DEFAULT_INACTIVITY_TIMEOUT)
    }
    pub fn max_lifetime(&self) -> Duration {
        self.max_lifetime.unwrap_or(DEFAULT_MAX_LIFETIME)
    }
    pub fn cap_to_credentials(&self) -> bool {
        self.cap_to_credentials.unwrap_or(true)
    }
    pub fn unauthenticated(&self) -> Unauthenticated {
        self.unauthenticated.unwrap_or(Unauthenticated::Status401)
    }
    pub fn login_url(&self) -> &str {
        self.login_url.as_deref().unwrap_or(DEFAULT_LOGIN_URL)
    }
    pub fn logout_redirect(&self) -> &str {
        self.logout_redirect
            .as_deref()
            .unwrap_or(DEFAULT_LOGOUT_REDIRECT)
    }
    pub fn logout_allow_get(&self) -> bool {
        self.logout_allow_get.unwrap_or(false)
    }
    pub fn user_header(&self) -> Option<&str> {
        self.user_header
            .as_ref()
            .and_then(|header| header.as_deref())
    }
    /// The header whose client-sent copies are removed here: this location's user header,
    /// or the outer one a `MemSessionUserHeader None` switched off (a client must not be able
    /// to set it where the module does not).
    pub fn user_header_to_clean(&self) -> Option<&str> {
        self.user_header()
            .or(self.switched_off_user_header.as_deref())
    }
    pub fn delegation(&self) -> bool {
        self.delegation.unwrap_or(false)
    }
    pub fn delegation_dir(&self) -> &str {
        self.delegation_dir
            .as_deref()
            .unwrap_or(DEFAULT_DELEGATION_DIR)
    }
    /// Defaults to `file` (AuthUserFile), as mod_auth_basic does, unless a Kerberos realm
    /// checks the passwords: then providers are asked only when named.
    pub fn password_providers(&self) -> Vec<&str> {
        match (&self.password_providers, &self.kerberos_realm) {
            (Some(providers), _) => providers.iter().map(String::as_str).collect(),
            (None, Some(_)) => Vec::new(),
            (None, None) => vec!["file"],
        }
    }
    pub fn kerberos_realm(&self) -> Option<&str> {
        self.kerberos_realm.as_deref()
    }
    /// `None`: libkrb5's default keytab (`KRB5_KTNAME`, else /etc/krb5.keytab).
    pub fn kerberos_keytab(&self) -> Option<&str> {
        self.kerberos_keytab.as_deref()
    }
    pub fn csrf_check(&self) -> bool {
        self.csrf_check.unwrap_or(true)
    }
    pub fn trusted_origins(&self) -> &[String] {
        self.trusted_origins.as_deref().unwrap_or(&[])
    }
    /// Whether the session cookie is taken out of the request before a backend sees it.
    pub fn strip_cookie(&self) -> bool {
        self.strip_cookie.unwrap_or(true)
    }
    pub fn extend(&self) -> bool {
        self.extend.unwrap_or(true)
    }
    /// Sessions `MemSession On` may mint per user per [`mint_limit::WINDOW`] here (`None`:
    /// unbounded).
    pub fn mint_limit(&self) -> Option<u32> {
        self.mint_limit
            .unwrap_or(Some(mint_limit::DEFAULT_PER_USER))
    }
    /// The password-guessing budgets of `memsession-login-form` here.
    pub fn login_limits(&self) -> Limits {
        Limits {
            per_user: self
                .login_limit_user
                .unwrap_or(Some(login_budget::DEFAULT_PER_USER)),
            per_address: self
                .login_limit_address
                .unwrap_or(Some(login_budget::DEFAULT_PER_ADDRESS)),
            window: self
                .login_limit_window
                .unwrap_or(login_budget::DEFAULT_WINDOW),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn user_header_none_still_cleans_the_outer_header() {
        let mut outer = DirConfig::default();
        outer.set("MemSessionUserHeader", "X-Remote-User").unwrap();
        let mut none = DirConfig::default();
        none.set("MemSessionUserHeader", "None").unwrap();
        let merged = outer.merge(&none);
        assert_eq!(merged.user_header(), None);
        assert_eq!(merged.user_header_to_clean(), Some("X-Remote-User"));
        // deeper sections inherit the cleaning
        let deeper = merged.merge(&DirConfig::default());
        assert_eq!(deeper.user_header_to_clean(), Some("X-Remote-User"));
        // a section naming its own header cleans that one
        let mut own = DirConfig::default();
        own.set("MemSessionUserHeader", "X-User").unwrap();
        assert_eq!(merged.merge(&own).user_header_to_clean(), Some("X-User"));
        assert_eq!(DirConfig::default().user_header_to_clean(), None);
    }
    use super::*;

    fn with(directives: &[(&str, &str)]) -> DirConfig {
        let mut config = DirConfig::default();
        for (directive, arg) in directives {
            config.set(directive, arg).expect("valid directive");
        }
        config
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let config = DirConfig::default();
        assert!(!config.enabled());
        assert_eq!(config.cookie_name(), "memsession");
        assert!(config.strip_cookie());
        assert_eq!(config.cookie_path(), "/");
        assert_eq!(config.cookie_domain(), None);
        assert_eq!(config.cookie_same_site(), SameSite::Lax);
        assert!(config.cookie_secure());
        assert!(!config.cookie_persistent());
        assert_eq!(config.inactivity_timeout(), Duration::from_secs(3600));
        assert_eq!(config.max_lifetime(), Duration::from_secs(8 * 3600));
        assert!(config.cap_to_credentials());
        assert_eq!(config.unauthenticated(), Unauthenticated::Status401);
        assert_eq!(config.login_url(), "/login");
        assert_eq!(config.logout_redirect(), "/");
        assert!(!config.logout_allow_get());
        assert_eq!(config.user_header(), None);
        assert!(!config.delegation());
        assert_eq!(config.delegation_dir(), "/run/memsession/ccache");
        assert!(config.csrf_check());
        assert_eq!(config.password_providers(), ["file"]);
        assert_eq!(config.kerberos_realm(), None);
        assert_eq!(config.kerberos_keytab(), None);
        assert!(config.trusted_origins().is_empty());
        assert!(config.extend());
        assert_eq!(
            config.login_limits(),
            Limits {
                per_user: Some(5),
                per_address: Some(30),
                window: Duration::from_secs(600)
            }
        );
        assert_eq!(config.mint_limit(), Some(10));
    }

    #[test]
    fn every_directive_inherits_overrides_and_can_be_turned_off() {
        // (directive, outer value, inner value, reading that tells them apart)
        type Reading = fn(&DirConfig) -> String;
        let cases: &[(&str, &str, &str, Reading)] = &[
            ("MemSession", "On", "Off", |c| c.enabled().to_string()),
            ("MemSessionCookieName", "outer", "inner", |c| {
                c.cookie_name().into()
            }),
            ("MemSessionCookiePath", "/a", "/b", |c| {
                c.cookie_path().into()
            }),
            ("MemSessionCookieDomain", "a.example", "b.example", |c| {
                format!("{:?}", c.cookie_domain())
            }),
            ("MemSessionCookieSameSite", "Strict", "None", |c| {
                format!("{:?}", c.cookie_same_site())
            }),
            ("MemSessionCookieSecure", "On", "Off", |c| {
                c.cookie_secure().to_string()
            }),
            ("MemSessionCookiePersistent", "On", "Off", |c| {
                c.cookie_persistent().to_string()
            }),
            ("MemSessionInactivityTimeout", "10m", "0", |c| {
                format!("{:?}", c.inactivity_timeout())
            }),
            ("MemSessionMaxLifetime", "1h", "0", |c| {
                format!("{:?}", c.max_lifetime())
            }),
            ("MemSessionCapToCredentials", "On", "Off", |c| {
                c.cap_to_credentials().to_string()
            }),
            ("MemSessionUnauthenticated", "redirect", "401", |c| {
                format!("{:?}", c.unauthenticated())
            }),
            ("MemSessionLoginURL", "/a", "/b", |c| c.login_url().into()),
            ("MemSessionLogoutRedirect", "/a", "/b", |c| {
                c.logout_redirect().into()
            }),
            ("MemSessionLogoutAllowGet", "On", "Off", |c| {
                c.logout_allow_get().to_string()
            }),
            ("MemSessionUserHeader", "X-Remote-User", "None", |c| {
                format!("{:?}", c.user_header())
            }),
            ("MemSessionDelegation", "On", "Off", |c| {
                c.delegation().to_string()
            }),
            ("MemSessionKerberosRealm", "A.TEST", "B.TEST", |c| {
                format!("{:?}", c.kerberos_realm())
            }),
            (
                "MemSessionKerberosKeytab",
                "/etc/a.keytab",
                "FILE:/etc/b.keytab",
                |c| format!("{:?}", c.kerberos_keytab()),
            ),
            ("MemSessionCSRFCheck", "Off", "On", |c| {
                c.csrf_check().to_string()
            }),
            (
                "MemSessionTrustedOrigin",
                "https://a.example",
                "https://b.example",
                |c| c.trusted_origins().join(","),
            ),
            ("MemSessionExtend", "Off", "On", |c| c.extend().to_string()),
            ("MemSessionLoginLimitUser", "3", "Off", |c| {
                format!("{:?}", c.login_limits().per_user)
            }),
            ("MemSessionLoginLimitAddress", "Off", "100", |c| {
                format!("{:?}", c.login_limits().per_address)
            }),
            ("MemSessionLoginLimitWindow", "1h", "30s", |c| {
                format!("{:?}", c.login_limits().window)
            }),
            ("MemSessionMintLimit", "3", "Off", |c| {
                format!("{:?}", c.mint_limit())
            }),
            ("MemSessionStripCookie", "Off", "On", |c| {
                c.strip_cookie().to_string()
            }),
        ];
        for (directive, outer_value, inner_value, reading) in cases {
            let outer = with(&[(directive, outer_value)]);
            let inner = with(&[(directive, inner_value)]);
            let unset = DirConfig::default();
            assert_eq!(
                reading(&outer.merge(&unset)),
                reading(&outer),
                "{directive}: an unset inner section inherits"
            );
            assert_eq!(
                reading(&outer.merge(&inner)),
                reading(&inner),
                "{directive}: the inner section overrides"
            );
            assert_ne!(
                reading(&outer),
                reading(&inner),
                "{directive}: test values differ"
            );
            assert_eq!(
                reading(&unset.merge(&inner)),
                reading(&inner),
                "{directive}: an unset outer section takes the inner value"
            );
        }
    }

    #[test]
    fn a_kerberos_realm_alone_checks_passwords_without_providers() {
        let kerberos = with(&[("MemSessionKerberosRealm", "EXAMPLE.TEST")]);
        assert!(kerberos.password_providers().is_empty());
        let both = with(&[
            ("MemSessionKerberosRealm", "EXAMPLE.TEST"),
            ("MemSessionPasswordProvider", "file"),
        ]);
        assert_eq!(both.password_providers(), ["file"]);
        assert_eq!(
            with(&[("MemSessionKerberosKeytab", "/etc/httpd.keytab")]).kerberos_keytab(),
            Some("FILE:/etc/httpd.keytab")
        );
    }

    #[test]
    fn trusted_origins_accumulate_within_one_section() {
        let config = with(&[
            ("MemSessionTrustedOrigin", "https://a.example"),
            ("MemSessionTrustedOrigin", "https://b.example:8443"),
        ]);
        assert_eq!(
            config.trusted_origins(),
            ["https://a.example", "https://b.example:8443"]
        );
    }

    #[test]
    fn errors_name_the_directive() {
        for (directive, arg) in [
            ("MemSessionUnauthenticated", "sometimes"),
            ("MemSessionInactivityTimeout", "-1"),
            ("MemSessionMaxLifetime", "forever"),
            ("MemSessionCookieSameSite", "Sideways"),
            ("MemSessionCookieName", "bad name"),
            ("MemSessionCookiePath", "/a;b"),
            ("MemSessionLoginURL", "//evil.example"),
            ("MemSessionTrustedOrigin", "not an origin"),
            ("MemSessionUserHeader", "X:Y"),
            ("MemSessionCookieSecure", "maybe"),
            ("MemSessionDelegationDir", "relative/dir"),
            ("MemSessionPasswordProvider", "no spaces"),
            ("MemSessionKerberosRealm", "TWO WORDS"),
            ("MemSessionKerberosRealm", "alice@EXAMPLE.TEST"),
            ("MemSessionKerberosKeytab", "relative.keytab"),
            ("MemSessionKerberosKeytab", "KEYRING:persistent"),
            ("MemSessionLoginLimitUser", "0"),
            ("MemSessionLoginLimitUser", "-5"),
            ("MemSessionLoginLimitAddress", "lots"),
            ("MemSessionLoginLimitAddress", "100001"),
            ("MemSessionLoginLimitWindow", "0"),
            ("MemSessionLoginLimitWindow", "2d"),
            ("MemSessionLoginLimitWindow", "soon"),
            ("MemSessionMintLimit", "0"),
            ("MemSessionMintLimit", "ten"),
            ("MemSessionMintLimit", "100001"),
            ("MemSessionStripCookie", "sometimes"),
        ] {
            let error = DirConfig::default().set(directive, arg).unwrap_err();
            assert!(error.starts_with(directive), "{error}");
            assert!(error.contains(arg), "{error} should quote {arg}");
        }
        // The ends of a range are in it.
        for window in ["1s", "1d", "999ms"] {
            let result = DirConfig::default().set("MemSessionLoginLimitWindow", window);
            assert_eq!(result.is_ok(), window != "999ms", "{window}: {result:?}");
        }
    }
}
