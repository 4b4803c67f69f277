//! `memsessionctl`: what an administrator runs against the session store — `check`, `stats`,
//! `revoke-user`, `revoke-all`, `session-info`, `locate`.
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
//! | 64 | usage error; `--vhost` names no server; `session-info` among several stores |
//! | 65 | `session-info`: stdin holds no session cookie value |
//! | 78 | the Apache configuration cannot be read, is invalid, has no MemSession server directive, or cannot be decided |
pub mod apache_config;
mod locate;

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
use crate::session_store::{GlobalCopy, Policy, SessionStore, BEHIND_GRACE};
use crate::store::address::ServerAddress;
use crate::store::breaker::BreakerState;
use crate::store::client::{StoreClient, StoreError};
use crate::store::transport::Transport;
use apache_config::{Known, Scope};

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
usage: memsessionctl [--config FILE] [--define NAME]... [--vhost NAME]
                     [--servers ADDR[,ADDR...]] [--prefix PREFIX] [--secret-file FILE[,PREVIOUS]]
                     [--timeout DURATION] [--replicas 0|1] [--json] COMMAND

commands:
  check              connect to every memcached server, report version, uptime, memory,
                     items, evictions and revocation generation; exit 1 on evictions, 2 if a
                     server is unreachable or BEHIND (it missed a revocation: re-run it)
  stats              memcached figures per server and the session layer's state
  revoke-user USER   end every session of USER, on every node, at its next request
  revoke-all         end every session of this deployment (this key prefix)
                     Both write every server; exit 2 naming each server that did not take
                     it (the others did): re-run until it succeeds
  session-info       read a session cookie value from stdin; show its user, times,
                     validity and its home server (never the id); with MemSessionReplicas 1,
                     which of its two servers (home, replica) hold a copy
  locate USER        for each server: whether it holds USER's revocation epoch and its
                     copy of the global epoch (with its revocation generation)

Where the store is comes from --config (default /etc/apache2/apache2.conf), resolved as
httpd would: Include/IncludeOptional followed, every <VirtualHost> with what it sets and
inherits (MemSessionServers, MemSessionKeyPrefix, MemSessionSecretFile, MemSessionTimeout,
MemSessionReplicas),
<IfModule> against the LoadModule lines read, <IfDefine> against Define lines, the -D names
in APACHE_ARGUMENTS of the envvars file next to FILE, and --define NAME (httpd's -D NAME;
Debian's apache2ctl passes none of its own). A section it cannot decide (<IfVersion>,
<Macro>, ...) that holds such settings is refused (exit 78), never guessed. The main server
counts only when a Listen address reaches it past the virtual hosts.
Several stores (different servers, prefix or secret): check, stats, revoke-user and
revoke-all act on each and report each; session-info needs --vhost NAME (a ServerName or
ServerAlias), which picks the stores of the matching servers for every command.
--servers, --prefix, --secret-file and --replicas replace what the configuration says; with --servers
and no --config the configuration is not read. No MemSession server directive in the
configuration and no --servers: exit 78 (the defaults are not assumed). Every command
prints the servers, prefix and source (file:line or flag) it used. The secret file is
readable by root only: run as root.
exit codes: 0 ok, 1 warning/invalid session, 2 store unreachable or failing, 64 usage,
65 no cookie value on stdin, 78 configuration unreadable, invalid or undecidable.
";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Check,
    Stats,
    RevokeUser(String),
    RevokeAll,
    SessionInfo,
    Locate(String),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Check => "check",
            Command::Stats => "stats",
            Command::RevokeUser(_) => "revoke-user",
            Command::RevokeAll => "revoke-all",
            Command::SessionInfo => "session-info",
            Command::Locate(_) => "locate",
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
    /// `--define NAME`: httpd runs with `-D NAME`.
    pub defines: Vec<String>,
    /// `--vhost NAME`: only the servers answering to NAME.
    pub vhost: Option<String>,
    pub timeout: Option<Duration>,
    /// `--replicas 0|1`: `MemSessionReplicas`, in place of what the configuration says.
    pub replicas: Option<bool>,
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
    let mut defines = Vec::new();
    let mut vhost = None;
    let mut timeout = None;
    let mut replicas = None;
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
            "--define" => {
                let name = value("--define")?;
                if name.is_empty() || name.contains(char::is_whitespace) {
                    return Err("--define: give one name, as httpd's -D NAME".to_string());
                }
                defines.push(name);
            }
            "--vhost" => {
                let name = value("--vhost")?;
                if name.is_empty() {
                    return Err("--vhost: give a ServerName or ServerAlias".to_string());
                }
                vhost = Some(name);
            }
            "--timeout" => {
                let given = value("--timeout")?;
                let parsed = parse_duration(&given).map_err(|e| format!("--timeout: {e}"))?;
                if parsed.is_zero() || parsed > Duration::from_secs(60) {
                    return Err("--timeout: must be more than 0 and at most 60s".to_string());
                }
                timeout = Some(parsed);
            }
            "--replicas" => {
                let given = value("--replicas")?;
                let mut check = ServerConfig::default();
                check
                    .set("MemSessionReplicas", &given)
                    .map_err(|e| format!("--replicas: {e}"))?;
                replicas = Some(check.replicas == Some(1));
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
        ["locate", user] if !user.is_empty() => Command::Locate(user.to_string()),
        ["locate"] | ["locate", _] => return Err("locate needs a user name".to_string()),
        [] => return Err("no command given".to_string()),
        [command, ..]
            if !matches!(
                *command,
                "check" | "stats" | "revoke-all" | "session-info" | "revoke-user" | "locate"
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
        defines,
        vhost,
        timeout,
        replicas,
        json,
        command,
    })
}

/// One store: where it is, how to talk to it, and where that was read.
#[derive(Debug)]
pub struct Target {
    pub servers: Vec<ServerAddress>,
    pub prefix: String,
    pub secrets: Secrets,
    pub timeout: Duration,
    /// TLS and authentication for TCP servers, as the configuration says.
    pub transport: Transport,
    /// `MemSessionReplicas 1` with two servers or more: sessions have a second copy.
    pub replicas: bool,
    pub source: Source,
    /// The servers of httpd that use this store (empty when only flags say where it is).
    pub hosts: Vec<String>,
}

/// Where each part of a [`Target`] came from: `file:line`, a flag, or `default`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub servers: String,
    pub prefix: String,
    pub secret: String,
}

impl Target {
    /// The lines every command prints first about the store it acts on.
    fn header(&self) -> String {
        let mut out = format!(
            "servers: {}\nprefix: {}\nsource: servers from {}; prefix from {}; secret from {}\n",
            self.servers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            self.prefix,
            self.source.servers,
            self.source.prefix,
            self.source.secret,
        );
        if !self.hosts.is_empty() {
            out.push_str(&format!("hosts: {}\n", self.hosts.join("; ")));
        }
        if self.replicas {
            out.push_str("replicas: 1 (each session on its home server and a replica)\n");
        }
        out
    }

    /// The same as a JSON object.
    fn json(&self) -> String {
        let list = |items: &mut dyn Iterator<Item = String>| {
            items.map(|i| json_string(&i)).collect::<Vec<_>>().join(",")
        };
        format!(
            "{{\"servers\":[{}],\"prefix\":{},\"source\":{{\"servers\":{},\"prefix\":{},\
             \"secret\":{}}},\"hosts\":[{}]}}",
            list(&mut self.servers.iter().map(ToString::to_string)),
            json_string(&self.prefix),
            json_string(&self.source.servers),
            json_string(&self.source.prefix),
            json_string(&self.source.secret),
            list(&mut self.hosts.iter().cloned()),
        )
    }
}

/// Resolves the stores to act on: the Apache configuration as httpd reads it (unless
/// `--servers` is given without `--config`), narrowed by `--vhost`, with the flags replacing
/// what it says; stores that are the same (servers, prefix and secret) are one.
/// `Err` is (exit code, message).
pub fn resolve(options: &Options) -> Result<Vec<Target>, (i32, String)> {
    let config_error = |message: String| (EXIT_CONFIG, message);
    let flag_secrets = match &options.secret_files {
        Some(files) => {
            let mut given = ServerConfig::default();
            let words: Vec<&str> = files.iter().map(String::as_str).collect();
            given
                .set_words(SECRET_DIRECTIVE, &words)
                .map_err(|e| config_error(format!("--secret-file: {e}")))?;
            given.secrets
        }
        None => None,
    };
    let read_config = options.config.is_some() || options.servers.is_none();
    let scopes: Vec<Scope> = if read_config {
        let path = options
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        let root = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let hint = |e: String| {
            if options.servers.is_none() && options.config.is_none() {
                config_error(format!("{e} (give --config FILE or --servers ADDR)"))
            } else {
                config_error(e)
            }
        };
        let mut known = Known {
            defines: options.defines.iter().cloned().collect(),
            process_env: true,
            ..Known::default()
        };
        known.read_envvars(&root.join("envvars")).map_err(hint)?;
        let found = apache_config::read(&path, &root, &known).map_err(hint)?;
        if !found.any && options.servers.is_none() {
            return Err(config_error(format!(
                "no MemSession server directive in {} or the {} files it includes (in the \
                 branches httpd reads): memsessionctl does not assume the defaults; give \
                 --config FILE, or --servers ADDR with --prefix and --secret-file",
                path.display(),
                found.files.len().saturating_sub(1)
            )));
        }
        found.scopes()
    } else {
        if options.vhost.is_some() {
            return Err((
                EXIT_USAGE,
                "--vhost picks from the Apache configuration: give --config FILE".to_string(),
            ));
        }
        vec![Scope::default()]
    };
    let scopes: Vec<Scope> = match &options.vhost {
        Some(name) => {
            let chosen: Vec<Scope> = scopes
                .iter()
                .filter(|scope| scope.answers_to(name))
                .cloned()
                .collect();
            if chosen.is_empty() {
                let names: Vec<String> = scopes.iter().flat_map(Scope::names).collect();
                return Err((
                    EXIT_USAGE,
                    format!(
                        "--vhost {name}: no server has that ServerName or ServerAlias (there \
                         are: {})",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                ));
            }
            chosen
        }
        None => scopes,
    };
    let mut targets: Vec<Target> = Vec::new();
    for scope in scopes {
        let config = &scope.config;
        let origin = &scope.origin;
        let (servers, servers_from) = match &options.servers {
            Some(servers) => (servers.clone(), "--servers".to_string()),
            None if origin.servers.is_empty() => (
                config.servers(),
                "default (MemSessionServers not set)".to_string(),
            ),
            None => (config.servers(), origin.servers.join(", ")),
        };
        let (prefix, prefix_from) = match &options.prefix {
            Some(prefix) => (prefix.clone(), "--prefix".to_string()),
            None => (
                config.key_prefix().to_string(),
                origin
                    .prefix
                    .clone()
                    .unwrap_or_else(|| "default".to_string()),
            ),
        };
        let (secrets, secret_from) = match (&flag_secrets, &config.secrets) {
            (Some(secrets), _) => (secrets.clone(), "--secret-file".to_string()),
            (None, Some(secrets)) => (secrets.clone(), origin.secret.clone().unwrap_or_default()),
            (None, None) => {
                let place = if read_config {
                    format!("{SECRET_DIRECTIVE} is not set for the {}", scope.label())
                } else {
                    format!("{SECRET_DIRECTIVE} is not read without --config")
                };
                return Err(config_error(format!(
                    "no server secret: {place}; give --secret-file FILE"
                )));
            }
        };
        let secret_from = format!("{secret_from} ({})", secrets.files.join(", "));
        let timeout = options.timeout.unwrap_or_else(|| {
            if config.timeout.is_some() {
                config.timeout().max(DEFAULT_TIMEOUT)
            } else {
                DEFAULT_TIMEOUT
            }
        });
        let transport = config
            .transport()
            .map_err(|e| config_error(format!("the {}: {e}", scope.label())))?;
        let replicas =
            options.replicas.unwrap_or(config.replicas.unwrap_or(0) > 0) && servers.len() > 1;
        let host = read_config.then(|| scope.label());
        let same = targets.iter_mut().find(|t| {
            t.servers == servers && t.prefix == prefix && t.secrets.files == secrets.files
        });
        match same {
            Some(target) => {
                target.hosts.extend(host);
                target.timeout = target.timeout.max(timeout);
                // Copies are looked for wherever any server using the store may put them.
                target.replicas |= replicas;
            }
            None => targets.push(Target {
                servers,
                prefix,
                secrets,
                timeout,
                transport,
                replicas,
                source: Source {
                    servers: servers_from,
                    prefix: prefix_from,
                    secret: secret_from,
                },
                hosts: host.into_iter().collect(),
            }),
        }
    }
    Ok(targets)
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
    let targets = match resolve(&options) {
        Ok(targets) => targets,
        Err((code, message)) => return failure(json, command, code, &message),
    };
    if targets.len() > 1 && options.command == Command::SessionInfo {
        let stores: Vec<String> = targets
            .iter()
            .map(|t| format!("prefix {} for {}", t.prefix, t.hosts.join(", ")))
            .collect();
        return failure(
            json,
            command,
            EXIT_USAGE,
            &format!(
                "the configuration has {} session stores ({}): give --vhost NAME to say \
                 which one the cookie is from",
                targets.len(),
                stores.join("; ")
            ),
        );
    }
    let mut all = Outcome::default();
    for (index, target) in targets.iter().enumerate() {
        let client = StoreClient::new(target.servers.clone(), target.timeout)
            .with_transport(target.transport.clone());
        let store = SessionStore::new(
            client,
            &target.secrets.current,
            target.secrets.previous.as_ref(),
            &target.prefix,
            Duration::ZERO,
        )
        .with_replicas(target.replicas)
        // Inspection writes nothing: a copy found only on the replica is not put back home.
        .with_repairs(false);
        let out = match &options.command {
            Command::Check => check(&store, target, json),
            Command::Stats => stats(&store, target, json),
            Command::RevokeUser(user) => revoke(&store, target, json, Some(user)),
            Command::RevokeAll => revoke(&store, target, json, None),
            Command::SessionInfo => session_info(&store, stdin, json, now),
            Command::Locate(user) => locate::locate(&store, target, json, user),
        };
        if json {
            all.stdout.push_str(&with_store(&out.stdout, target));
        } else {
            if index > 0 {
                all.stdout.push('\n');
            }
            all.stdout.push_str(&target.header());
            all.stdout.push_str(&out.stdout);
        }
        all.stderr.push_str(&out.stderr);
        // 2 (a store failed) outranks 1 (a warning, an invalid session) outranks 0.
        all.code = all.code.max(out.code);
    }
    all
}

/// A command's JSON line with the store it used added as `"store"`.
fn with_store(line: &str, target: &Target) -> String {
    match line.trim_end().strip_suffix('}') {
        Some(body) => format!("{body},\"store\":{}}}\n", target.json()),
        None => line.to_string(),
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
    let revocations = revocation_standing(store);
    for (index, report) in server_reports(store.client()).into_iter().enumerate() {
        match report.up {
            true => {
                let evictions = report.evictions.unwrap_or(0);
                if evictions > 0 {
                    warnings += 1;
                }
                out.stdout.push_str(&format!(
                    "{}: {} memcached {}, up {}s, memory {} of {}, {} items, {} evictions{}\n",
                    report.address,
                    if evictions > 0 { "WARNING" } else { "ok" },
                    report.version,
                    figure(report.uptime),
                    mib(report.bytes),
                    mib(report.limit_maxbytes),
                    figure(report.curr_items),
                    evictions,
                    revocations
                        .get(index)
                        .and_then(CopyStanding::text)
                        .map_or(String::new(), |text| format!(", {text}")),
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
    let mut revocations_json = Vec::new();
    for copy in &revocations {
        if copy.behind {
            errors += 1;
            out.stderr.push_str(&format!(
                "memsessionctl: {}: BEHIND: revocation generation {} < {}: this server missed a \
                 revocation; re-run the revocation (revoke-user/revoke-all), or the module \
                 resets this server (every session stored on it ends) {}s after a node has \
                 seen the newer generation\n",
                copy.address,
                copy.generation.unwrap_or(0),
                copy.highest,
                BEHIND_GRACE.as_secs()
            ));
        }
        revocations_json.push(copy.json());
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
             \"prefix\":{},\"timeout_ms\":{},\"servers\":[{}],\"revocations\":[{}]}}\n",
            out.code == EXIT_OK,
            out.code,
            json_string(&target.prefix),
            target.timeout.as_millis(),
            servers_json.join(","),
            revocations_json.join(",")
        );
        out.stderr.clear();
    }
    out
}

/// One server's copy of the global epoch, as `check` reports it.
struct CopyStanding {
    address: String,
    /// `None`: the server did not answer (already reported).
    read: Option<Option<u64>>,
    generation: Option<u64>,
    highest: u64,
    behind: bool,
}

impl CopyStanding {
    fn text(&self) -> Option<String> {
        Some(match self.read? {
            None => "no global epoch (the next login there creates it)".to_string(),
            Some(generation) => format!(
                "revocation generation {generation}{}",
                if self.behind { " BEHIND" } else { "" }
            ),
        })
    }

    fn json(&self) -> String {
        format!(
            "{{\"server\":{},\"answered\":{},\"global_epoch\":{},\"generation\":{},\
             \"behind\":{}}}",
            json_string(&self.address),
            self.read.is_some(),
            matches!(self.read, Some(Some(_))),
            self.generation
                .map_or("null".to_string(), |g| g.to_string()),
            self.behind
        )
    }
}

/// Each server's revocation generation (on its copy of the global epoch, current secret): a
/// server below the highest missed a revocation.
fn revocation_standing(store: &SessionStore) -> Vec<CopyStanding> {
    let client = store.client();
    let key = store.global_epoch_key();
    let mut copies: Vec<CopyStanding> = client
        .servers()
        .iter()
        .enumerate()
        .map(|(server, address)| {
            let read = client.get_on(server, key).ok().map(|value| {
                value.map(|v| GlobalCopy::parse(Some(&v)).map_or(0, |c| c.generation))
            });
            CopyStanding {
                address: address.to_string(),
                read,
                generation: read.flatten(),
                highest: 0,
                behind: false,
            }
        })
        .collect();
    let highest = copies
        .iter()
        .filter_map(|c| c.generation)
        .max()
        .unwrap_or(0);
    for copy in &mut copies {
        copy.highest = highest;
        copy.behind = copy.generation.is_some_and(|g| g < highest);
    }
    copies
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
    // The session layer: on how many servers the deployment-wide revocation epoch has its
    // copy (no session stored on a server validates without it; the next login there
    // creates it).
    let copies = revocation_standing(store);
    let answered = copies.iter().filter(|c| c.read.is_some()).count();
    let present = copies
        .iter()
        .filter(|c| matches!(c.read, Some(Some(_))))
        .count();
    let epoch_text = match (present, answered, copies.len()) {
        (p, a, n) if p == n && a == n => "present".to_string(),
        (0, a, n) if a == n => "absent".to_string(),
        (p, a, n) => {
            if a < n {
                errors += 1;
            }
            match n - a {
                0 => format!("present on {p} of {n} servers"),
                silent => format!("present on {p} of {n} servers ({silent} did not answer)"),
            }
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
    let (command, revocation) = match user {
        Some(user) => ("revoke-user", store.revoke_user(user)),
        None => ("revoke-all", store.revoke_all()),
    };
    let what = match user {
        Some(user) => format!("every session of user {user}"),
        None => "every session".to_string(),
    };
    let servers = &target.servers;
    let missed: Vec<(String, String)> = revocation
        .missed
        .iter()
        .map(|(server, error)| {
            let address = &servers[*server];
            (address.to_string(), one_line(&server_error(address, error)))
        })
        .collect();
    let reached = servers.len() - missed.len();
    let user_json = user.map_or(String::new(), |u| format!(",\"user\":{}", json_string(u)));
    if !missed.is_empty() {
        let names: Vec<&str> = missed.iter().map(|(name, _)| name.as_str()).collect();
        let message = format!(
            "{command} NOT complete (prefix {}): {} of {} servers did not take it: {}. The \
             {reached} others did: sessions stored there end at their next request. Sessions \
             stored on {} are served by a node that has not yet seen the revocation on another \
             server, until that server answers and is reset (its sessions all end {}s after a \
             node saw the revocation) or this command is re-run: re-run it until it succeeds",
            target.prefix,
            missed.len(),
            servers.len(),
            missed
                .iter()
                .map(|(_, error)| error.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            names.join(", "),
            crate::session_store::BEHIND_GRACE.as_secs(),
        );
        if json {
            let missed_json: Vec<String> = missed
                .iter()
                .map(|(name, error)| {
                    format!(
                        "{{\"server\":{},\"error\":{}}}",
                        json_string(name),
                        json_string(error)
                    )
                })
                .collect();
            return Outcome {
                code: EXIT_STORE,
                stdout: format!(
                    "{{\"command\":{},\"ok\":false,\"exit\":{EXIT_STORE},\"prefix\":{}{user_json},\
                     \"generation\":{},\"reached\":{reached},\"missed\":[{}],\"error\":{}}}\n",
                    json_string(command),
                    json_string(&target.prefix),
                    revocation.generation,
                    missed_json.join(","),
                    json_string(&message),
                ),
                stderr: String::new(),
            };
        }
        return failure(false, command, EXIT_STORE, &message);
    }
    let stdout = if json {
        format!(
            "{{\"command\":{},\"ok\":true,\"exit\":0,\"prefix\":{}{user_json},\
             \"generation\":{},\"reached\":{reached},\"missed\":[]}}\n",
            json_string(command),
            json_string(&target.prefix),
            revocation.generation,
        )
    } else {
        format!(
            "revoked {what} (prefix {}) on all {reached} servers: they fail at their next \
             request on every node\n",
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
    // Where the copies of the session are: (server, role, held), home first.
    let mut places: Vec<(usize, &str, Option<bool>)> = Vec::new();
    let mut failed = None;
    for deriver in store.derivers() {
        let keys = deriver.derive(&id);
        let home = store.client().server_index(&keys.store_key);
        let replica = store.replica_of(&keys.store_key);
        let mut here = Vec::new();
        for (server, role) in [(Some(home), "home"), (replica, "replica")] {
            let Some(server) = server else { continue };
            match store.client().get_on(server, &keys.store_key) {
                Ok(Some(sealed)) => {
                    here.push((server, role, Some(true)));
                    found.get_or_insert_with(|| (sealed, keys.clone()));
                }
                Ok(None) => here.push((server, role, Some(false))),
                Err(error) => {
                    here.push((server, role, None));
                    failed.get_or_insert(error);
                }
            }
        }
        if places.is_empty() || here.iter().any(|(_, _, held)| *held == Some(true)) {
            places = here;
        }
        if found.is_some() {
            break;
        }
    }
    let server = found.as_ref().map_or(String::new(), |(_, keys)| {
        store.client().servers()[store.client().server_index(&keys.store_key)].to_string()
    });
    if let (None, Some(error)) = (&found, failed) {
        return failure(
            json,
            COMMAND,
            EXIT_STORE,
            &format!("session {tag}: {error}"),
        );
    }
    let copies_text = places
        .iter()
        .map(|(server, role, held)| {
            format!(
                "{} ({role}, {})",
                store.client().servers()[*server],
                match held {
                    Some(true) => "held",
                    Some(false) => "missing",
                    None => "unreachable",
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let copies_json = places
        .iter()
        .map(|(server, role, held)| {
            format!(
                "{{\"server\":{},\"role\":{},\"held\":{}}}",
                json_string(&store.client().servers()[*server].to_string()),
                json_string(role),
                held.map_or("null".to_string(), |h| h.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join(",");
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
             \"delegated_credentials\":{},\"server\":{}{}}}\n",
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
            json_string(&server),
            if store.replicas() {
                format!(",\"copies\":[{copies_json}]")
            } else {
                String::new()
            },
        )
    } else {
        format!(
            "session: {tag}\nvalidity: {validity}\nuser: {}\nauth-type: {}\ncreated: {}\n\
             last-seen: {}\nexpires: {}\ninactivity-timeout: {}\ncredential-end: {}\n\
             delegated-credentials: {}\nserver: {server}\n{}",
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
            if store.replicas() {
                format!("copies: {copies_text}\n")
            } else {
                String::new()
            },
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
        assert_eq!(
            parse_args(&args("locate bob")).unwrap().command,
            Command::Locate("bob".into())
        );
        for bad in [
            "",
            "frobnicate",
            "revoke-user",
            "locate",
            "locate a b",
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

    /// A configuration with two virtual hosts on different prefixes, in a fresh directory.
    fn two_vhosts(name: &str) -> (PathBuf, String) {
        let dir = std::env::temp_dir().join(format!("memsessionctl-{name}-{}", std::process::id()));
        let secret = secret_file(&dir);
        let sock = dir.join("none.sock").display().to_string();
        std::fs::write(
            dir.join("apache2.conf"),
            format!(
                "LoadModule auth_memsession_module mod_auth_memsession.so\nListen 80\n\
                 MemSessionSecretFile {secret}\nMemSessionServers unix:{sock}\n\
                 <VirtualHost *:80>\nServerName a.example\nMemSessionKeyPrefix a:\n\
                 </VirtualHost>\n<VirtualHost *:80>\nServerName b.example\n\
                 ServerAlias www.b.example\nMemSessionKeyPrefix b:\n</VirtualHost>\n\
                 <VirtualHost *:80>\nServerName a2.example\nMemSessionKeyPrefix a:\n\
                 </VirtualHost>\n"
            ),
        )
        .unwrap();
        (dir.clone(), dir.join("apache2.conf").display().to_string())
    }

    #[test]
    fn several_stores_are_each_acted_on_or_chosen_with_vhost() {
        let (dir, conf) = two_vhosts("stores");
        let options = parse_args(&args(&format!("--config {conf} revoke-all"))).unwrap();
        let targets = resolve(&options).unwrap();
        let prefixes: Vec<&str> = targets.iter().map(|t| t.prefix.as_str()).collect();
        assert_eq!(
            prefixes,
            ["a:", "b:"],
            "a2.example shares a.example's store"
        );
        assert_eq!(targets[0].hosts.len(), 2);
        assert!(targets[0].source.prefix.ends_with("apache2.conf:7"));
        assert!(targets[1].source.servers.ends_with("apache2.conf:4"));

        let options = parse_args(&args(&format!(
            "--config {conf} --vhost WWW.b.example check"
        )))
        .unwrap();
        let targets = resolve(&options).unwrap();
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].prefix, "b:");
        let options =
            parse_args(&args(&format!("--config {conf} --vhost c.example check"))).unwrap();
        let (code, message) = resolve(&options).unwrap_err();
        assert_eq!(code, EXIT_USAGE);
        assert!(
            message.contains("a.example, b.example, www.b.example"),
            "{message}"
        );

        // every store is reported, each with where it came from; the worst exit wins
        let out = run(
            &args(&format!(
                "--config {conf} --timeout 100ms revoke-user alice"
            )),
            &mut std::io::empty(),
            0,
        );
        assert_eq!(out.code, EXIT_STORE, "{out:?}");
        assert_eq!(out.stdout.matches("prefix: ").count(), 2, "{}", out.stdout);
        assert!(
            out.stdout.contains("hosts: <VirtualHost *:80> at"),
            "{}",
            out.stdout
        );
        assert_eq!(out.stderr.lines().count(), 2, "{}", out.stderr);
        let json = run(
            &args(&format!(
                "--config {conf} --timeout 100ms --json revoke-all"
            )),
            &mut std::io::empty(),
            0,
        );
        assert_eq!(json.stdout.lines().count(), 2, "{}", json.stdout);
        assert!(json.stdout.contains("\"store\":{\"servers\":[\"unix:"));

        let info = run(
            &args(&format!("--config {conf} session-info")),
            &mut std::io::empty(),
            0,
        );
        assert_eq!(info.code, EXIT_USAGE, "{info:?}");
        assert!(info.stderr.contains("--vhost"), "{}", info.stderr);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_configuration_is_exit_78_not_the_defaults() {
        let dir = std::env::temp_dir().join(format!("memsessionctl-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("apache2.conf");
        std::fs::write(&conf, "Listen 80\n").unwrap();
        let out = run(
            &args(&format!("--config {} check", conf.display())),
            &mut std::io::empty(),
            0,
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(out.code, EXIT_CONFIG, "{out:?}");
        assert!(
            out.stderr.contains("no MemSession server directive"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("--servers"), "{}", out.stderr);
    }
}
