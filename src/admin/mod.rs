//! `memsessionctl`: what an administrator runs against the session store — `check`, `stats`,
//! `revoke-user`, `revoke-all`, `session-info`.
//!
//! It talks to memcached through the module's own [`StoreClient`] and [`SessionStore`], so
//! keys are derived and routed exactly as the module does (same prefix, same hash, same server
//! order). Everything here is testable without a terminal: [`run`] takes the arguments and
//! stdin and returns the exit code and the text for stdout and stderr.
//!
//! Exit codes (stable, for scripts):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done; healthy; the session is valid |
//! | 1 | `check`: a warning (evictions); `session-info`: the session is not valid |
//! | 2 | a memcached server is unreachable or failed |
//! | 64 | usage error |
//! | 65 | `session-info`: stdin holds no session cookie value |
//! | 78 | the Apache configuration could not be read or is invalid |
pub mod apache_config;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::duration::parse_duration;
use crate::config::server::{Secrets, SECRET_DIRECTIVE};
use crate::config::ServerConfig;
use crate::metrics::{json_string, server_json, ServerReport};
use crate::session::id::SessionId;
use crate::session::lifetime;
use crate::session::record;
use crate::session_store::{Policy, SessionStore};
use crate::store::address::ServerAddress;
use crate::store::breaker::BreakerState;
use crate::store::client::{StoreClient, StoreError};

pub const EXIT_OK: i32 = 0;
pub const EXIT_WARNING: i32 = 1;
pub const EXIT_INVALID_SESSION: i32 = 1;
pub const EXIT_STORE: i32 = 2;
pub const EXIT_USAGE: i32 = 64;
pub const EXIT_DATA: i32 = 65;
pub const EXIT_CONFIG: i32 = 78;

pub const DEFAULT_CONFIG: &str = "/etc/apache2/apache2.conf";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
/// A cookie value is 43 characters; anything much longer on stdin is not one.
const MAX_STDIN: u64 = 8192;

pub const USAGE: &str = "\
usage: memsessionctl [--servers ADDR[,ADDR...]] [--prefix PREFIX] [--config FILE]
                     [--secret-file FILE[,PREVIOUS]] [--timeout DURATION] [--json] COMMAND

commands:
  check              connect to every memcached server, report version, uptime, memory,
                     items and evictions; exit 1 on evictions, 2 if a server is unreachable
  stats              memcached figures per server and the session layer's state
  revoke-user USER   end every session of USER, on every node, at its next request
  revoke-all         end every session of this deployment (this key prefix)
  session-info       read a session cookie value from stdin; show its user, times and
                     validity (never the id)

--servers, --prefix and --secret-file default to MemSessionServers, MemSessionKeyPrefix and
MemSessionSecretFile of the main server in --config (default /etc/apache2/apache2.conf,
Include/IncludeOptional followed). The secret file is readable by root only: run as root.
exit codes: 0 ok, 1 warning/invalid session, 2 store unreachable or failing, 64 usage,
65 no cookie value on stdin, 78 configuration unreadable or invalid.
";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Check,
    Stats,
    RevokeUser(String),
    RevokeAll,
    SessionInfo,
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Check => "check",
            Command::Stats => "stats",
            Command::RevokeUser(_) => "revoke-user",
            Command::RevokeAll => "revoke-all",
            Command::SessionInfo => "session-info",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub servers: Option<Vec<ServerAddress>>,
    pub prefix: Option<String>,
    /// `--secret-file CURRENT[,PREVIOUS]`
    pub secret_files: Option<Vec<String>>,
    pub config: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub json: bool,
    pub command: Command,
}

/// What a run printed and how it exits.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn usage(message: &str) -> Outcome {
        Outcome {
            code: EXIT_USAGE,
            stdout: String::new(),
            stderr: format!("memsessionctl: {message}\n{USAGE}"),
        }
    }
}

/// Parses the arguments (without the program name). `Err` is a usage message.
pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut servers = None;
    let mut prefix = None;
    let mut secret_files = None;
    let mut config = None;
    let mut timeout = None;
    let mut json = false;
    let mut rest: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
            _ => (arg, None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            if let Some(value) = inline.clone() {
                return Ok(value);
            }
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag {
            "--servers" => {
                let list = value("--servers")?;
                let parsed = list
                    .split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(ServerAddress::parse)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("--servers: {e}"))?;
                if parsed.is_empty() {
                    return Err("--servers: no server given".to_string());
                }
                servers = Some(parsed);
            }
            "--prefix" => {
                let mut check = ServerConfig::default();
                let given = value("--prefix")?;
                check
                    .set("MemSessionKeyPrefix", &given)
                    .map_err(|e| format!("--prefix: {e}"))?;
                prefix = Some(check.key_prefix().to_string());
            }
            "--secret-file" => {
                let files: Vec<String> = value("--secret-file")?
                    .split(',')
                    .filter(|file| !file.is_empty())
                    .map(str::to_string)
                    .collect();
                if !(1..=2).contains(&files.len()) {
                    return Err("--secret-file: give FILE or CURRENT,PREVIOUS".to_string());
                }
                secret_files = Some(files);
            }
            "--config" => config = Some(PathBuf::from(value("--config")?)),
            "--timeout" => {
                let given = value("--timeout")?;
                let parsed = parse_duration(&given).map_err(|e| format!("--timeout: {e}"))?;
                if parsed.is_zero() || parsed > Duration::from_secs(60) {
                    return Err("--timeout: must be more than 0 and at most 60s".to_string());
                }
                timeout = Some(parsed);
            }
            "--json" if inline.is_none() => json = true,
            "-h" | "--help" => return Err(String::new()),
            other if other.starts_with('-') && other.len() > 1 => {
                return Err(format!("unknown option {other}"))
            }
            _ => rest.push(arg),
        }
        i += 1;
    }
    let command = match rest.as_slice() {
        ["check"] => Command::Check,
        ["stats"] => Command::Stats,
        ["revoke-all"] => Command::RevokeAll,
        ["session-info"] => Command::SessionInfo,
        ["revoke-user", user] if !user.is_empty() => Command::RevokeUser(user.to_string()),
        ["revoke-user"] | ["revoke-user", _] => {
            return Err("revoke-user needs a user name".to_string())
        }
        [] => return Err("no command given".to_string()),
        [command, ..]
            if !matches!(
                *command,
                "check" | "stats" | "revoke-all" | "session-info" | "revoke-user"
            ) =>
        {
            return Err(format!("unknown command {command}"))
        }
        [command, ..] => return Err(format!("{command}: too many arguments")),
    };
    Ok(Options {
        servers,
        prefix,
        secret_files,
        config,
        timeout,
        json,
        command,
    })
}

/// Where the store is and how to talk to it, after the config file and the flags.
#[derive(Debug)]
pub struct Target {
    pub servers: Vec<ServerAddress>,
    pub prefix: String,
    pub secrets: Secrets,
    pub timeout: Duration,
    /// Where the settings came from, for `check`.
    pub source: String,
}

/// Resolves the target: flags win over the Apache configuration, which is read when
/// `--config` is given or when `--servers` is not.
pub fn resolve(options: &Options) -> Result<Target, String> {
    let read_config = options.config.is_some() || options.servers.is_none();
    let (config, source) = if read_config {
        let path = options
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        let root = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let found = apache_config::read(&path, &root).map_err(|e| {
            if options.servers.is_none() && options.config.is_none() {
                format!("{e} (give --config FILE or --servers ADDR)")
            } else {
                e
            }
        })?;
        let source = if found.any {
            path.display().to_string()
        } else {
            format!(
                "{} (no MemSession server directives: defaults)",
                path.display()
            )
        };
        (found.config, source)
    } else {
        (ServerConfig::default(), "--servers".to_string())
    };
    let secrets = match &options.secret_files {
        Some(files) => {
            let mut given = ServerConfig::default();
            let files: Vec<&str> = files.iter().map(String::as_str).collect();
            given
                .set_words(SECRET_DIRECTIVE, &files)
                .map_err(|e| format!("--secret-file: {e}"))?;
            given.secrets
        }
        None => config.secrets.clone(),
    };
    let secrets = secrets.ok_or_else(|| {
        format!("no server secret: {SECRET_DIRECTIVE} is not in {source}; give --secret-file FILE")
    })?;
    let servers = options.servers.clone().unwrap_or_else(|| config.servers());
    let prefix = options
        .prefix
        .clone()
        .unwrap_or_else(|| config.key_prefix().to_string());
    let timeout = options.timeout.unwrap_or_else(|| {
        if config.timeout.is_some() {
            config.timeout().max(DEFAULT_TIMEOUT)
        } else {
            DEFAULT_TIMEOUT
        }
    });
    Ok(Target {
        servers,
        prefix,
        secrets,
        timeout,
        source,
    })
}

/// Runs the parsed command. `now` is unix seconds.
pub fn run(args: &[String], stdin: &mut dyn Read, now: u64) -> Outcome {
    let options = match parse_args(args) {
        Ok(options) => options,
        Err(message) if message.is_empty() => {
            return Outcome {
                code: EXIT_OK,
                stdout: USAGE.to_string(),
                stderr: String::new(),
            }
        }
        Err(message) => return Outcome::usage(&message),
    };
    let json = options.json;
    let command = options.command.name();
    let target = match resolve(&options) {
        Ok(target) => target,
        Err(message) => return failure(json, command, EXIT_CONFIG, &message),
    };
    let client = StoreClient::new(target.servers.clone(), target.timeout);
    let store = SessionStore::new(
        client,
        &target.secrets.current,
        target.secrets.previous.as_ref(),
        &target.prefix,
        Duration::ZERO,
    );
    match &options.command {
        Command::Check => check(&store, &target, json),
        Command::Stats => stats(&store, &target, json),
        Command::RevokeUser(user) => revoke(&store, &target, json, Some(user)),
        Command::RevokeAll => revoke(&store, &target, json, None),
        Command::SessionInfo => session_info(&store, stdin, json, now),
    }
}

fn failure(json: bool, command: &str, code: i32, message: &str) -> Outcome {
    let line = one_line(message);
    if json {
        Outcome {
            code,
            stdout: format!(
                "{{\"command\":{},\"ok\":false,\"exit\":{code},\"error\":{}}}\n",
                json_string(command),
                json_string(&line)
            ),
            stderr: String::new(),
        }
    } else {
        Outcome {
            code,
            stdout: String::new(),
            stderr: format!("memsessionctl: {line}\n"),
        }
    }
}

/// Messages are one line, whatever a server sent.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// "ADDR: reason", without naming the address twice.
fn server_error(address: &ServerAddress, error: &StoreError) -> String {
    let address = address.to_string();
    let text = error.to_string();
    let text = text.replace(&format!("{address}: "), "");
    format!("{address}: {text}")
}

fn breaker_name(state: Option<BreakerState>) -> &'static str {
    match state {
        Some(BreakerState::Open) => "open",
        Some(BreakerState::HalfOpen) => "half-open",
        _ => "closed",
    }
}

/// Asks every server for its `stats` (one bounded round trip each); a server that does not
/// answer is reported down with the reason.
pub fn server_reports(client: &StoreClient) -> Vec<ServerReport> {
    client
        .servers()
        .iter()
        .enumerate()
        .map(|(index, address)| {
            let result = client.stats(index);
            let report = ServerReport {
                address: address.to_string(),
                breaker: breaker_name(client.breaker_state(index)),
                ..Default::default()
            };
            match result {
                Ok(stats) => ServerReport { up: true, ..report }.with_stats(&stats),
                Err(error) => ServerReport {
                    error: one_line(&server_error(address, &error)),
                    ..report
                },
            }
        })
        .collect()
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("?".to_string(), |b| {
        format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
    })
}

fn figure(value: Option<u64>) -> String {
    value.map_or("?".to_string(), |v| v.to_string())
}

fn check(store: &SessionStore, target: &Target, json: bool) -> Outcome {
    let mut out = Outcome::default();
    let mut servers_json = Vec::new();
    let mut warnings = 0;
    let mut errors = 0;
    for report in server_reports(store.client()) {
        match report.up {
            true => {
                let evictions = report.evictions.unwrap_or(0);
                if evictions > 0 {
                    warnings += 1;
                }
                out.stdout.push_str(&format!(
                    "{}: {} memcached {}, up {}s, memory {} of {}, {} items, {} evictions\n",
                    report.address,
                    if evictions > 0 { "WARNING" } else { "ok" },
                    report.version,
                    figure(report.uptime),
                    mib(report.bytes),
                    mib(report.limit_maxbytes),
                    figure(report.curr_items),
                    evictions,
                ));
                if evictions > 0 {
                    out.stderr.push_str(&format!(
                        "memsessionctl: warning: {}: {evictions} evictions: memcached is dropping \
                         items for memory (sessions end early, evicted revocation epochs end \
                         their sessions); give it more memory (-m)\n",
                        report.address
                    ));
                }
                servers_json.push(server_json(&report));
            }
            false => {
                errors += 1;
                out.stderr
                    .push_str(&format!("memsessionctl: {}\n", report.error));
                servers_json.push(server_json(&report));
            }
        }
    }
    out.code = if errors > 0 {
        EXIT_STORE
    } else if warnings > 0 {
        EXIT_WARNING
    } else {
        EXIT_OK
    };
    if json {
        let status = match out.code {
            EXIT_OK => "ok",
            EXIT_WARNING => "warning",
            _ => "error",
        };
        out.stdout = format!(
            "{{\"command\":\"check\",\"ok\":{},\"exit\":{},\"status\":\"{status}\",\
             \"source\":{},\"prefix\":{},\"timeout_ms\":{},\"servers\":[{}]}}\n",
            out.code == EXIT_OK,
            out.code,
            json_string(&target.source),
            json_string(&target.prefix),
            target.timeout.as_millis(),
            servers_json.join(",")
        );
        out.stderr.clear();
    }
    out
}

const STATS_NOTE: &str = "memcached cannot count keys by prefix without walking every item, so \
     no session count is shown: curr_items counts every key on a server (sessions, revocation \
     epochs and anything else sharing it). Login and validation counters are served by the \
     memsession-status handler.";

fn stats(store: &SessionStore, target: &Target, json: bool) -> Outcome {
    let client = store.client();
    let mut out = Outcome::default();
    let mut errors = 0;
    let mut servers_json = Vec::new();
    let mut wanted = [
        "uptime",
        "curr_items",
        "total_items",
        "evictions",
        "expired_unfetched",
        "bytes",
        "limit_maxbytes",
        "curr_connections",
        "cmd_get",
        "get_hits",
        "get_misses",
    ]
    .map(|name| (name, String::new()));
    for (index, address) in target.servers.iter().enumerate() {
        match client.stats(index) {
            Ok(all) => {
                let mut line = format!("{address}: up");
                let mut fields = vec![
                    format!("\"server\":{}", json_string(&address.to_string())),
                    "\"up\":true".to_string(),
                ];
                if let Some((_, v)) = all.iter().find(|(n, _)| n == "version") {
                    line.push_str(&format!(" version={v}"));
                    fields.push(format!("\"version\":{}", json_string(v)));
                }
                for (name, value) in wanted.iter_mut() {
                    *value = all
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or(String::new(), |(_, v)| v.clone());
                    if !value.is_empty() {
                        line.push_str(&format!(" {name}={value}"));
                        let number = value
                            .parse::<u64>()
                            .map_or_else(|_| json_string(value), |n| n.to_string());
                        fields.push(format!("\"{name}\":{number}"));
                    }
                }
                out.stdout.push_str(&line);
                out.stdout.push('\n');
                servers_json.push(format!("{{{}}}", fields.join(",")));
            }
            Err(error) => {
                errors += 1;
                let message = server_error(address, &error);
                out.stderr
                    .push_str(&format!("memsessionctl: {}\n", one_line(&message)));
                servers_json.push(format!(
                    "{{\"server\":{},\"up\":false,\"error\":{}}}",
                    json_string(&address.to_string()),
                    json_string(&message)
                ));
            }
        }
    }
    // The session layer: whether the deployment-wide revocation epoch exists (no session
    // validates without it; the next login creates it).
    let epoch = client.get(store.global_epoch_key());
    let epoch_text = match &epoch {
        Ok(Some(_)) => "present".to_string(),
        Ok(None) => "absent".to_string(),
        Err(error) => {
            errors += 1;
            format!("unknown ({error})")
        }
    };
    out.stdout.push_str(&format!(
        "sessions (prefix {}): global revocation epoch {epoch_text}\nnote: {STATS_NOTE}\n",
        target.prefix
    ));
    out.code = if errors > 0 { EXIT_STORE } else { EXIT_OK };
    if json {
        out.stdout = format!(
            "{{\"command\":\"stats\",\"ok\":{},\"exit\":{},\"prefix\":{},\"servers\":[{}],\
             \"sessions\":{{\"global_epoch\":{},\"count\":null,\"note\":{}}}}}\n",
            out.code == EXIT_OK,
            out.code,
            json_string(&target.prefix),
            servers_json.join(","),
            json_string(&epoch_text),
            json_string(STATS_NOTE),
        );
        out.stderr.clear();
    }
    out
}

fn revoke(store: &SessionStore, target: &Target, json: bool, user: Option<&str>) -> Outcome {
    let (command, result) = match user {
        Some(user) => ("revoke-user", store.revoke_user(user)),
        None => ("revoke-all", store.revoke_all()),
    };
    if let Err(error) = result {
        return failure(
            json,
            command,
            EXIT_STORE,
            &format!("{command} failed, nothing was revoked: {error}"),
        );
    }
    let what = match user {
        Some(user) => format!("every session of user {user}"),
        None => "every session".to_string(),
    };
    let stdout = if json {
        format!(
            "{{\"command\":{},\"ok\":true,\"exit\":0,\"prefix\":{}{}}}\n",
            json_string(command),
            json_string(&target.prefix),
            user.map_or(String::new(), |u| format!(",\"user\":{}", json_string(u)))
        )
    } else {
        format!(
            "revoked {what} (prefix {}): they fail at their next request on every node\n",
            target.prefix
        )
    };
    Outcome {
        code: EXIT_OK,
        stdout,
        stderr: String::new(),
    }
}

/// The session id named on stdin: a bare cookie value, `name=value`, or a `Cookie:` header
/// with exactly one well-formed session id in it.
pub fn id_from_input(input: &str) -> Result<SessionId, &'static str> {
    let input = input.trim();
    let input = input
        .strip_prefix("Cookie:")
        .or_else(|| input.strip_prefix("cookie:"))
        .unwrap_or(input);
    let mut found: Option<SessionId> = None;
    for part in input.split([';', '\n']) {
        let value = part.rsplit_once('=').map_or(part, |(_, v)| v).trim();
        if let Some(id) = SessionId::from_cookie_value(value) {
            match &found {
                Some(seen) if seen.as_bytes() != id.as_bytes() => {
                    return Err("stdin holds more than one session cookie value")
                }
                _ => found = Some(id),
            }
        }
    }
    found.ok_or("stdin holds no session cookie value (43 base64url characters)")
}

/// ISO 8601 UTC for unix seconds (`0` is "none").
pub fn iso8601(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn time_or_none(unix: u64) -> String {
    if unix == 0 {
        "none".to_string()
    } else {
        iso8601(unix)
    }
}

fn session_info(store: &SessionStore, stdin: &mut dyn Read, json: bool, now: u64) -> Outcome {
    const COMMAND: &str = "session-info";
    let mut input = String::new();
    if stdin.take(MAX_STDIN).read_to_string(&mut input).is_err() {
        return failure(json, COMMAND, EXIT_DATA, "stdin is not text");
    }
    let id = match id_from_input(&input) {
        Ok(id) => id,
        Err(message) => return failure(json, COMMAND, EXIT_DATA, message),
    };
    let tag = id.log_tag();
    let mut found = None;
    for deriver in store.derivers() {
        let keys = deriver.derive(&id);
        match store.client().get(&keys.store_key) {
            Ok(Some(sealed)) => {
                found = Some((sealed, keys));
                break;
            }
            Ok(None) => {}
            Err(error) => {
                return failure(
                    json,
                    COMMAND,
                    EXIT_STORE,
                    &format!("session {tag}: {error}"),
                )
            }
        }
    }
    let record = match found.map(|(sealed, keys)| record::open(&sealed, &keys)) {
        None => return invalid(json, &tag, "unknown", "no such session in the store"),
        Some(Err(error)) => {
            return invalid(json, &tag, "malformed-record", &error.to_string());
        }
        Some(Ok(record)) => record,
    };
    // Epochs and lifetime exactly as the module judges them; extend: false writes nothing.
    let policy = Policy {
        inactivity_timeout: Duration::ZERO,
        max_lifetime: Duration::ZERO,
        extend: false,
    };
    let validity = match store.validate(&id, &policy, now) {
        Ok(_) => "valid",
        Err(rejection) if !rejection.is_final() => {
            return failure(
                json,
                COMMAND,
                EXIT_STORE,
                &format!("session {tag}: {rejection}"),
            )
        }
        Err(rejection) => rejection.reason(),
    };
    let expires = lifetime::end_time(&record);
    let code = if validity == "valid" {
        EXIT_OK
    } else {
        EXIT_INVALID_SESSION
    };
    let stdout = if json {
        format!(
            "{{\"command\":\"session-info\",\"ok\":{},\"exit\":{code},\"session\":{},\
             \"validity\":{},\"user\":{},\"auth_type\":{},\"created\":{},\"last_seen\":{},\
             \"expires\":{},\"inactivity_timeout\":{},\"credential_end\":{},\
             \"delegated_credentials\":{}}}\n",
            code == EXIT_OK,
            json_string(&tag),
            json_string(validity),
            json_string(&record.user),
            json_string(&record.auth_type),
            record.created,
            record.last_seen,
            expires.map_or("null".to_string(), |e| e.to_string()),
            record.inactivity_timeout,
            if record.credential_end == 0 {
                "null".to_string()
            } else {
                record.credential_end.to_string()
            },
            record.ccache.is_some(),
        )
    } else {
        format!(
            "session: {tag}\nvalidity: {validity}\nuser: {}\nauth-type: {}\ncreated: {}\n\
             last-seen: {}\nexpires: {}\ninactivity-timeout: {}\ncredential-end: {}\n\
             delegated-credentials: {}\n",
            one_line(&record.user),
            one_line(&record.auth_type),
            iso8601(record.created),
            iso8601(record.last_seen),
            expires.map_or("never".to_string(), iso8601),
            if record.inactivity_timeout == 0 {
                "none".to_string()
            } else {
                format!("{}s", record.inactivity_timeout)
            },
            time_or_none(record.credential_end),
            if record.ccache.is_some() { "yes" } else { "no" },
        )
    };
    Outcome {
        code,
        stdout,
        stderr: String::new(),
    }
}

fn invalid(json: bool, tag: &str, validity: &str, detail: &str) -> Outcome {
    let stdout = if json {
        format!(
            "{{\"command\":\"session-info\",\"ok\":false,\"exit\":{EXIT_INVALID_SESSION},\
             \"session\":{},\"validity\":{},\"detail\":{}}}\n",
            json_string(tag),
            json_string(validity),
            json_string(detail)
        )
    } else {
        format!(
            "session: {tag}\nvalidity: {validity}\ndetail: {}\n",
            one_line(detail)
        )
    };
    Outcome {
        code: EXIT_INVALID_SESSION,
        stdout,
        stderr: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_options_and_commands() {
        let o = parse_args(&args(
            "--servers unix:/a.sock,127.0.0.1:11211 --prefix p: --timeout=250ms --json check",
        ))
        .unwrap();
        assert_eq!(o.servers.as_ref().unwrap().len(), 2);
        assert_eq!(o.prefix.as_deref(), Some("p:"));
        assert_eq!(o.timeout, Some(Duration::from_millis(250)));
        assert!(o.json);
        assert_eq!(o.command, Command::Check);
        assert_eq!(
            parse_args(&args("revoke-user alice")).unwrap().command,
            Command::RevokeUser("alice".into())
        );
        for bad in [
            "",
            "frobnicate",
            "revoke-user",
            "revoke-all now",
            "--servers",
            "--servers unix: check",
            "--timeout 0 check",
            "--bogus check",
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(
            run(&args("nope"), &mut std::io::empty(), 0).code,
            EXIT_USAGE
        );
    }

    #[test]
    fn cookie_values_from_stdin() {
        let id = SessionId::generate().unwrap();
        let value = id.to_cookie_value();
        for input in [
            format!("{value}\n"),
            format!("memsession={value}"),
            format!("Cookie: a=b; memsession={value}; c=d"),
        ] {
            assert_eq!(id_from_input(&input).unwrap().as_bytes(), id.as_bytes());
        }
        let other = SessionId::generate().unwrap().to_cookie_value();
        assert!(id_from_input(&format!("a={value}; b={other}")).is_err());
        assert!(id_from_input("short").is_err());
        assert!(id_from_input("").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_790_000_000), "2026-09-21T14:13:20Z");
    }

    /// A secret file in a fresh directory, as the module wants it (0600).
    fn secret_file(dir: &Path) -> String {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, [0x42u8; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path.display().to_string()
    }

    #[test]
    fn no_secret_is_a_configuration_error() {
        let out = run(
            &args("--servers unix:/nonexistent.sock revoke-all"),
            &mut std::io::empty(),
            0,
        );
        assert_eq!(out.code, EXIT_CONFIG, "{out:?}");
        assert!(
            out.stderr.contains("MemSessionSecretFile"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("--secret-file"), "{}", out.stderr);
    }

    #[test]
    fn unreachable_server_is_one_line_and_exit_2() {
        let dir = std::env::temp_dir().join(format!("memsessionctl-none-{}", std::process::id()));
        let sock = dir.join("nothing.sock");
        let secret = secret_file(&dir);
        let out = run(
            &args(&format!(
                "--servers unix:{} --secret-file {secret} --timeout 200ms check",
                sock.display()
            )),
            &mut std::io::empty(),
            0,
        );
        assert_eq!(out.code, EXIT_STORE);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains(&sock.display().to_string()));
        let json = run(
            &args(&format!(
                "--servers unix:{} --secret-file={secret} --json revoke-all",
                sock.display()
            )),
            &mut std::io::empty(),
            0,
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(json.code, EXIT_STORE);
        assert!(json
            .stdout
            .starts_with("{\"command\":\"revoke-all\",\"ok\":false"));
    }

    #[test]
    fn missing_config_is_a_config_error() {
        let out = run(
            &args("--config /nonexistent/apache2.conf check"),
            &mut std::io::empty(),
            0,
        );
        assert_eq!(out.code, EXIT_CONFIG);
        assert!(out.stderr.contains("/nonexistent/apache2.conf"));
    }
}
