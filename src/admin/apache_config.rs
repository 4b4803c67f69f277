//! Resolving the module's server-scope settings out of an Apache configuration the way httpd
//! does, or refusing where memsessionctl cannot know what httpd would do.
//!
//! - `Include`/`IncludeOptional` (globs, relative to `ServerRoot`) are followed in order; an
//!   include inside a section belongs to that section.
//! - The main server and every `<VirtualHost>` get their own `MemSessionServers`,
//!   `MemSessionKeyPrefix`, `MemSessionSecretFile`, `MemSessionTimeout` and
//!   `MemSessionReplicas`, applied with the
//!   module's own parser; a virtual host inherits what it does not set
//!   ([`ServerConfig::merge`]). Each setting remembers the `file:line` it came from.
//! - `<IfDefine>` is evaluated against httpd's `-D` names as far as they are known (the
//!   `--define` flags, `APACHE_ARGUMENTS` in envvars) and the `Define`/`UnDefine` lines read
//!   so far; `<IfModule>` against httpd's compiled-in modules and the `LoadModule` lines read
//!   so far; `<IfFile>` against this machine's files. A false branch is skipped, includes and
//!   all, as httpd skips it.
//! - What cannot be decided here (`<IfVersion>`, `<IfDirective>`, `<IfSection>`, mod_macro's
//!   `<Macro>`, an `<IfDefine>` when envvars computes `APACHE_ARGUMENTS`, an `<IfModule>` by
//!   file name when a loaded module's file name is unknown, a `${VAR}` with no known value) is
//!   harmless unless it holds something that decides the store — a MemSession server
//!   directive, `LoadModule`, `Define`, `ServerName`/`ServerAlias`, `Listen`, a
//!   `<VirtualHost>` — and then the whole read is refused, naming both places.
//! - `Listen` lines and `<VirtualHost>` addresses tell whether the main server can answer a
//!   request at all ([`Found::main_serves_requests`]), as `apache2ctl -S` would show.
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::config::server::SECRET_DIRECTIVE;
use crate::config::store_transport;
use crate::config::ServerConfig;

/// Include nesting deeper than this is a loop.
const MAX_DEPTH: usize = 16;
/// Files read in all; a glob matching more is refused rather than read forever.
const MAX_FILES: usize = 2000;
const SERVER_DIRECTIVES: [&str; 8] = [
    "MemSessionServers",
    "MemSessionTimeout",
    "MemSessionKeyPrefix",
    "MemSessionReplicas",
    SECRET_DIRECTIVE,
    store_transport::CA_DIRECTIVE,
    store_transport::CLIENT_DIRECTIVE,
    store_transport::AUTH_DIRECTIVE,
];
/// Directives that decide which store is used, or how the rest is read.
const DECISIVE: [&str; 8] = [
    "LoadModule",
    "Define",
    "UnDefine",
    "ServerName",
    "ServerAlias",
    "Listen",
    "ServerRoot",
    "VirtualHost",
];
/// Debian 12's `apache2 -l`: (identifier, file name) of the modules compiled into httpd.
const BUILT_IN: [(&str, &str); 8] = [
    ("core_module", "core.c"),
    ("so_module", "mod_so.c"),
    ("watchdog_module", "mod_watchdog.c"),
    ("http_module", "http_core.c"),
    ("log_config_module", "mod_log_config.c"),
    ("logio_module", "mod_logio.c"),
    ("version_module", "mod_version.c"),
    ("unixd_module", "mod_unixd.c"),
];
/// Loaded modules whose source file name does not follow `mod_NAME.so` ↔ `NAME_module`.
const SOURCE_NAMES: [(&str, &str); 3] = [
    ("mpm_event_module", "event.c"),
    ("mpm_worker_module", "worker.c"),
    ("mpm_prefork_module", "prefork.c"),
];

/// What httpd is started with that its configuration files do not say.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// `-D` names httpd gets (`--define`, envvars' `APACHE_ARGUMENTS`).
    pub defines: BTreeSet<String>,
    /// Where `defines` cannot be all of them (envvars computes `APACHE_ARGUMENTS`): the reason.
    pub defines_unknown: Option<String>,
    /// Variables envvars sets: `Some(value)` when literal, `None` when the shell computes it.
    pub envvars: BTreeMap<String, Option<String>>,
    /// Whether `${NAME}` falls back to this process's environment (as `apache2ctl` run from
    /// this shell would pass it to httpd).
    pub process_env: bool,
}

impl Known {
    /// Reads Debian's envvars file (a shell script `apache2ctl` sources before starting
    /// httpd): `NAME=value` and `export NAME=value` lines with a literal value are taken;
    /// a value the shell computes (`$`, backquotes), or one set inside `if`/`case`, is
    /// "unknown"; `APACHE_ARGUMENTS` gives `-D` names. `-f`, `-d`, `-C` and `-c` there
    /// change what httpd reads and are refused.
    pub fn read_envvars(&mut self, path: &Path) -> Result<(), String> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
        };
        let mut depth = 0usize;
        for (number, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let first = line.split_whitespace().next().unwrap_or("");
            match first {
                "if" | "case" => depth += 1,
                "fi" | "esac" => depth = depth.saturating_sub(1),
                "." | "source" => {
                    self.defines_unknown = Some(format!(
                        "{}:{} sources another file",
                        path.display(),
                        number + 1
                    ))
                }
                _ => {}
            }
            let assignment = line.strip_prefix("export ").unwrap_or(line).trim();
            let Some((name, value)) = assignment.split_once('=') else {
                continue;
            };
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || line.starts_with('#')
            {
                continue;
            }
            let value = literal(value).filter(|_| depth == 0);
            if name == "APACHE_ARGUMENTS" {
                match &value {
                    Some(arguments) => self.arguments(arguments, path, number + 1)?,
                    None => {
                        self.defines_unknown = Some(format!(
                            "{}:{} computes APACHE_ARGUMENTS",
                            path.display(),
                            number + 1
                        ))
                    }
                }
            }
            self.envvars.insert(name.to_string(), value);
        }
        Ok(())
    }

    fn arguments(&mut self, arguments: &str, path: &Path, line: usize) -> Result<(), String> {
        let mut words = arguments.split_whitespace();
        while let Some(word) = words.next() {
            if let Some(name) = word.strip_prefix("-D") {
                let name = if name.is_empty() {
                    words.next().unwrap_or("")
                } else {
                    name
                };
                self.defines.insert(name.to_string());
            } else if ["-f", "-d", "-C", "-c"].iter().any(|f| word.starts_with(f)) {
                return Err(format!(
                    "{}:{line}: APACHE_ARGUMENTS gives httpd {word}, which changes what it \
                     reads: give memsessionctl --config, or --servers, --prefix and \
                     --secret-file",
                    path.display()
                ));
            }
        }
        Ok(())
    }
}

/// A shell value without expansions: unquoted, '...' or "..." without `$` or backquotes.
fn literal(value: &str) -> Option<String> {
    let value = value.trim();
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return (!inner.contains('\'')).then(|| inner.to_string());
    }
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    let plain = !inner.contains(['$', '`', '\\', '"', '\''])
        && (value.starts_with('"') || !inner.contains(char::is_whitespace));
    plain.then(|| inner.to_string())
}

/// Where each setting of one server came from (`file:line`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub servers: Vec<String>,
    pub prefix: Option<String>,
    pub secret: Option<String>,
    pub timeout: Option<String>,
}

/// The main server or one virtual host: its own settings, or (after [`Found::scopes`]) what
/// it runs with.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub config: ServerConfig,
    pub origin: Origin,
    /// `ServerName`, without scheme and port.
    pub server_name: Option<String>,
    /// `ServerAlias` names (wildcards allowed).
    pub aliases: Vec<String>,
    /// `main server` or `<VirtualHost *:443> at file:line`.
    pub at: String,
    /// The `<VirtualHost>` addresses.
    pub addresses: Vec<String>,
}

impl Scope {
    /// Whether `name` is this scope's `ServerName` or matches one of its `ServerAlias`es.
    pub fn answers_to(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.names()
            .iter()
            .any(|n| wildcard(n.to_ascii_lowercase().as_bytes(), name.as_bytes()))
    }

    /// `ServerName` first, then the aliases.
    pub fn names(&self) -> Vec<String> {
        self.server_name
            .iter()
            .chain(self.aliases.iter())
            .cloned()
            .collect()
    }

    /// `at`, with the names when there are some.
    pub fn label(&self) -> String {
        let names = self.names();
        if names.is_empty() {
            self.at.clone()
        } else {
            format!("{} ({})", self.at, names.join(" "))
        }
    }

    fn merged(main: &Scope, vhost: &Scope) -> Scope {
        Scope {
            config: main.config.merge(&vhost.config),
            origin: Origin {
                servers: if vhost.origin.servers.is_empty() {
                    main.origin.servers.clone()
                } else {
                    vhost.origin.servers.clone()
                },
                prefix: vhost.origin.prefix.clone().or(main.origin.prefix.clone()),
                secret: vhost.origin.secret.clone().or(main.origin.secret.clone()),
                timeout: vhost.origin.timeout.clone().or(main.origin.timeout.clone()),
            },
            ..vhost.clone()
        }
    }
}

#[derive(Debug, Default)]
pub struct Found {
    pub main: Scope,
    /// Each `<VirtualHost>` with only what it sets itself.
    pub vhosts: Vec<Scope>,
    /// Files read, in order.
    pub files: Vec<PathBuf>,
    /// Whether any MemSession server directive was read (in a branch httpd reads).
    pub any: bool,
    /// `Listen` lines: (address or none for all, port).
    pub listens: Vec<(Option<String>, String)>,
}

impl Found {
    /// Whether a connection can reach the main server: some `Listen` address and port that no
    /// `<VirtualHost>` covers (httpd hands every connection a virtual host matches to it).
    pub fn main_serves_requests(&self) -> bool {
        if self.vhosts.is_empty() || self.listens.is_empty() {
            return true;
        }
        self.listens.iter().any(|(address, port)| {
            !self.vhosts.iter().any(|vhost| {
                vhost
                    .addresses
                    .iter()
                    .any(|a| covers(a, address.as_deref(), port))
            })
        })
    }

    /// The servers httpd answers requests with, as each runs: the main server when it can
    /// be reached, then every virtual host merged over it.
    pub fn scopes(&self) -> Vec<Scope> {
        let main = self.main_serves_requests().then(|| self.main.clone());
        main.into_iter()
            .chain(self.vhosts.iter().map(|v| Scope::merged(&self.main, v)))
            .collect()
    }
}

/// Whether a `<VirtualHost>` address takes connections on a `Listen` address and port.
fn covers(vhost_address: &str, listen_address: Option<&str>, listen_port: &str) -> bool {
    let (host, port) = split_port(vhost_address);
    let port_matches = port.map_or(true, |p| p == "*" || p == listen_port);
    let host_matches = host == "*"
        || host.eq_ignore_ascii_case("_default_")
        || listen_address.is_some_and(|l| l.eq_ignore_ascii_case(host));
    port_matches && host_matches
}

/// `host:port`, `[v6]:port`, `host`, `port` → (host, port).
fn split_port(address: &str) -> (&str, Option<&str>) {
    if let Some(rest) = address.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let port = rest[end + 1..].strip_prefix(':');
            return (&address[..end + 2], port);
        }
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (address, None),
    }
}

/// A module httpd will have loaded: its identifier and, where known, its source file name
/// (what `<IfModule mod_ssl.c>` names).
struct Loaded {
    id: String,
    source: Option<String>,
}

enum Kind {
    /// A section httpd reads (a true condition).
    Read,
    /// A false condition: skipped with everything in it.
    Skip,
    /// A condition memsessionctl cannot decide; the text says where and why.
    Undecided(String),
    /// A `<VirtualHost>`: index into `found.vhosts`.
    Vhost(usize),
    /// `<Directory>`, `<Location>` and the like: no server directive belongs there.
    Inner,
}

struct Section {
    name: String,
    kind: Kind,
}

/// What an included file inherits from the line that included it.
#[derive(Clone, Default)]
struct Context {
    vhost: Option<usize>,
    undecided: Option<String>,
    inner: Option<String>,
}

struct Reader<'k> {
    known: &'k Known,
    server_root: PathBuf,
    defines: BTreeSet<String>,
    /// `Define NAME VALUE`, for `${NAME}`.
    variables: BTreeMap<String, String>,
    modules: Vec<Loaded>,
    found: Found,
}

/// Reads `path` and everything it includes. `server_root` is where relative includes start
/// until a `ServerRoot` line says otherwise (Debian: `/etc/apache2`).
pub fn read(path: &Path, server_root: &Path, known: &Known) -> Result<Found, String> {
    let mut reader = Reader {
        known,
        server_root: server_root.to_path_buf(),
        defines: known.defines.clone(),
        variables: BTreeMap::new(),
        modules: Vec::new(),
        found: Found {
            main: Scope {
                at: "main server".to_string(),
                ..Scope::default()
            },
            ..Found::default()
        },
    };
    reader.file(path, 0, false, &Context::default())?;
    Ok(reader.found)
}

/// The words of a directive line, Apache-style: whitespace separates, double or single
/// quotes group, a backslash escapes the next character inside quotes.
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return out;
        };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            while let Some(c) = chars.next() {
                if c == first {
                    break;
                }
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                    continue;
                }
                word.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word);
    }
}

/// Shell-style wildcard match of one path component: `*`, `?` and `[...]` classes.
pub fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative with one backtrack point for `*`: linear in practice, bounded always.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, len)) = class(&pattern[p..], name[n]) {
                        if matched {
                            p += len;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A `[...]` class at the start of `pattern`: (whether `c` is in it, the class's length).
fn class(pattern: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(1), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pattern.len() {
        if pattern[i] == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            matched |= (pattern[i]..=pattern[i + 2]).contains(&c);
            i += 3;
        } else {
            matched |= pattern[i] == c;
            i += 1;
        }
    }
    None
}

fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// The files a (possibly wildcarded) include path names, sorted as httpd sorts them.
fn expand_glob(path: &Path) -> Result<Vec<PathBuf>, String> {
    let mut current = vec![PathBuf::new()];
    for component in path.components() {
        let text = component.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        for base in &current {
            if has_wildcard(&text) {
                let Ok(entries) = fs::read_dir(if base.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    base
                }) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| !name.starts_with('.'))
                    .filter(|name| wildcard(text.as_bytes(), name.as_bytes()))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|name| base.join(name)));
            } else {
                next.push(base.join(component));
            }
            if next.len() > MAX_FILES {
                return Err(format!(
                    "{} matches more than {MAX_FILES} files",
                    path.display()
                ));
            }
        }
        current = next;
    }
    Ok(current)
}

impl Reader<'_> {
    fn file(
        &mut self,
        path: &Path,
        depth: usize,
        optional: bool,
        context: &Context,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "{}: includes nested more than {MAX_DEPTH} deep (a loop?)",
                path.display()
            ));
        }
        if self.found.files.len() >= MAX_FILES {
            return Err(format!("more than {MAX_FILES} configuration files"));
        }
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for entry in entries {
                self.file(&entry, depth + 1, optional, context)?;
            }
            return Ok(());
        }
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(_) if optional => return Ok(()),
            Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
        };
        self.found.files.push(path.to_path_buf());
        let mut sections: Vec<Section> = Vec::new();
        let mut pending = String::new();
        let mut first_line = 0;
        for (number, raw) in text.lines().enumerate() {
            if pending.is_empty() {
                first_line = number + 1;
            }
            if let Some(continued) = raw.strip_suffix('\\') {
                pending.push_str(continued);
                pending.push(' ');
                continue;
            }
            pending.push_str(raw);
            let line = std::mem::take(&mut pending);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("{}:{first_line}", path.display());
            let skipping = sections.iter().any(|s| matches!(s.kind, Kind::Skip));
            if let Some(close) = line.strip_prefix("</") {
                let name = close.trim_end_matches('>').trim().to_ascii_lowercase();
                if let Some(position) = sections.iter().rposition(|s| s.name == name) {
                    sections.truncate(position);
                }
                continue;
            }
            if skipping {
                if let Some(open) = line.strip_prefix('<') {
                    sections.push(Section {
                        name: section_name(open),
                        kind: Kind::Skip,
                    });
                }
                continue;
            }
            let here = self.context(context, &sections);
            if let Some(open) = line.strip_prefix('<') {
                let section = self.open(open, &at, &here)?;
                sections.push(section);
                continue;
            }
            self.directive(line, &at, &here, depth)?;
        }
        Ok(())
    }

    /// The context a line is in: the file's sections over what its includer was in.
    fn context(&self, outer: &Context, sections: &[Section]) -> Context {
        let mut here = outer.clone();
        for section in sections {
            match &section.kind {
                Kind::Vhost(index) => here.vhost = Some(*index),
                Kind::Undecided(why) if here.undecided.is_none() => {
                    here.undecided = Some(why.clone())
                }
                Kind::Inner if here.inner.is_none() => here.inner = Some(section.name.clone()),
                _ => {}
            }
        }
        here
    }

    fn open(&mut self, open: &str, at: &str, here: &Context) -> Result<Section, String> {
        let body = open.trim_end().trim_end_matches('>');
        let words = words(body);
        let name = section_name(open);
        let argument = words.get(1..).unwrap_or(&[]).join(" ");
        let condition = |value: Option<bool>, why: &str| match value {
            Some(true) => Kind::Read,
            Some(false) => Kind::Skip,
            None => Kind::Undecided(format!(
                "{at}: <{} {argument}> cannot be decided here ({why})",
                words[0]
            )),
        };
        let kind = match name.as_str() {
            "ifdefine" => {
                let (negated, define) = negation(&argument);
                let value = if self.defines.contains(define) {
                    Some(true)
                } else if self.known.defines_unknown.is_some() {
                    None
                } else {
                    Some(false)
                };
                let why = format!(
                    "httpd's -D names are not all known: {}; name them with --define",
                    self.known.defines_unknown.as_deref().unwrap_or("")
                );
                condition(value.map(|v| v != negated), &why)
            }
            "ifmodule" => {
                let (negated, module) = negation(&argument);
                let (value, why) = self.module_loaded(module);
                condition(value.map(|v| v != negated), &why)
            }
            "iffile" => {
                let (negated, file) = negation(&argument);
                let file = self.expand(file);
                match file {
                    Ok(file) => {
                        let exists = self.server_root.join(file).exists();
                        condition(Some(exists != negated), "")
                    }
                    Err(variable) => {
                        condition(None, &format!("${{{variable}}} has no known value"))
                    }
                }
            }
            "ifversion" => condition(None, "memsessionctl does not know httpd's version"),
            "ifdirective" | "ifsection" => condition(
                None,
                "memsessionctl does not know every module's directives",
            ),
            "macro" => Kind::Undecided(format!(
                "{at}: <Macro> bodies are expanded by mod_macro at each Use, which \
                 memsessionctl does not do"
            )),
            "virtualhost" => {
                self.refuse_if_undecided(here, "<VirtualHost>", at)?;
                if let Some(inner) = &here.inner {
                    return Err(format!("{at}: <VirtualHost> inside <{inner}>"));
                }
                if here.vhost.is_some() {
                    return Err(format!("{at}: <VirtualHost> inside <VirtualHost>"));
                }
                self.found.vhosts.push(Scope {
                    at: format!("<{body}> at {at}"),
                    addresses: words[1..].to_vec(),
                    ..Scope::default()
                });
                Kind::Vhost(self.found.vhosts.len() - 1)
            }
            _ => Kind::Inner,
        };
        Ok(Section { name, kind })
    }

    /// Whether httpd has `module` (an identifier such as `ssl_module` or a file name such as
    /// `mod_ssl.c`) at this point: (the answer or none, why not).
    fn module_loaded(&self, module: &str) -> (Option<bool>, String) {
        let built_in = BUILT_IN
            .iter()
            .any(|(id, file)| *id == module || *file == module);
        let loaded = self
            .modules
            .iter()
            .any(|m| m.id == module || m.source.as_deref() == Some(module));
        if built_in || loaded {
            return (Some(true), String::new());
        }
        let unknown: Vec<&str> = self
            .modules
            .iter()
            .filter(|m| m.source.is_none())
            .map(|m| m.id.as_str())
            .collect();
        if unknown.is_empty() || module.ends_with("_module") {
            (Some(false), String::new())
        } else {
            (
                None,
                format!(
                    "the source file name of {} is not known; name the module by its \
                     identifier",
                    unknown.join(", ")
                ),
            )
        }
    }

    fn refuse_if_undecided(&self, here: &Context, what: &str, at: &str) -> Result<(), String> {
        match &here.undecided {
            Some(why) => Err(format!(
                "{why}, and it holds {what} at {at}: memsessionctl cannot tell whether httpd \
                 reads it. Move it out of that section, or give --servers, --prefix and \
                 --secret-file"
            )),
            None => Ok(()),
        }
    }

    /// `${NAME}` as httpd resolves it: `Define`d variables, then the environment httpd gets
    /// (envvars, then this process's). `Err` names a variable with no known value.
    fn expand(&self, word: &str) -> Result<String, String> {
        let mut out = String::with_capacity(word.len());
        let mut rest = word;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                break;
            };
            let name = &after[..end];
            let value = match self.variables.get(name) {
                Some(value) => Some(value.clone()),
                None => match self.known.envvars.get(name) {
                    Some(value) => value.clone(),
                    None if self.known.process_env => std::env::var(name).ok(),
                    None => None,
                },
            };
            out.push_str(&value.ok_or_else(|| name.to_string())?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn directive(
        &mut self,
        line: &str,
        at: &str,
        here: &Context,
        depth: usize,
    ) -> Result<(), String> {
        let words = words(line);
        let Some(directive) = words.first() else {
            return Ok(());
        };
        let server = SERVER_DIRECTIVES
            .iter()
            .find(|d| d.eq_ignore_ascii_case(directive));
        let decisive =
            server.is_some() || DECISIVE.iter().any(|d| d.eq_ignore_ascii_case(directive));
        let is = |name: &str| directive.eq_ignore_ascii_case(name);
        if !decisive && !is("Include") && !is("IncludeOptional") {
            return Ok(());
        }
        if decisive {
            self.refuse_if_undecided(here, directive, at)?;
        }
        let mut args = Vec::with_capacity(words.len() - 1);
        for word in &words[1..] {
            match self.expand(word) {
                Ok(value) => args.push(value),
                Err(variable) => {
                    return Err(format!(
                        "{at}: {directive}: ${{{variable}}} has no known value (not Defined, \
                         not set in envvars or this environment)"
                    ))
                }
            }
        }
        if let Some(name) = server {
            if let Some(inner) = &here.inner {
                return Err(format!(
                    "{at}: {name} is not allowed inside <{inner}> (httpd refuses it too)"
                ));
            }
            self.found.any = true;
            let scope = match here.vhost {
                Some(index) => &mut self.found.vhosts[index],
                None => &mut self.found.main,
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            scope
                .config
                .set_words(name, &args)
                .map_err(|error| format!("{at}: {error}"))?;
            match *name {
                "MemSessionServers" => scope.origin.servers.push(at.to_string()),
                "MemSessionKeyPrefix" => scope.origin.prefix = Some(at.to_string()),
                "MemSessionTimeout" => scope.origin.timeout = Some(at.to_string()),
                SECRET_DIRECTIVE => scope.origin.secret = Some(at.to_string()),
                // Replicas, TLS and authentication change where or how the store is
                // reached, not which store it is.
                _ => {}
            }
        } else if is("Include") || is("IncludeOptional") {
            let optional = is("IncludeOptional");
            for arg in &args {
                let target = self.server_root.join(arg);
                let matches = expand_glob(&target)?;
                if matches.is_empty() && !optional && !has_wildcard(arg) {
                    return Err(format!("{at}: Include {arg}: no such file"));
                }
                for included in matches {
                    self.file(&included, depth + 1, optional, here)?;
                }
            }
        } else if is("ServerRoot") {
            if let Some(root) = args.first() {
                self.server_root = PathBuf::from(root);
            }
        } else if is("Define") {
            if let Some(name) = args.first() {
                self.defines.insert(name.clone());
                if let Some(value) = args.get(1) {
                    self.variables.insert(name.clone(), value.clone());
                }
            }
        } else if is("UnDefine") {
            if let Some(name) = args.first() {
                self.defines.remove(name);
                self.variables.remove(name);
            }
        } else if is("LoadModule") {
            if let (Some(id), Some(file)) = (args.first(), args.get(1)) {
                self.modules.push(Loaded {
                    id: id.clone(),
                    source: source_name(id, file),
                });
            }
        } else if is("Listen") && here.vhost.is_none() {
            if let Some(address) = args.first() {
                let (host, port) = match split_port(address) {
                    (host, Some(port)) => (Some(host.to_string()), port.to_string()),
                    (port, None) => (None, port.to_string()),
                };
                self.found.listens.push((host, port));
            }
        } else if is("ServerName") || is("ServerAlias") {
            let scope = match here.vhost {
                Some(index) => &mut self.found.vhosts[index],
                None => &mut self.found.main,
            };
            for name in &args {
                let name = name.split_once("://").map_or(name.as_str(), |(_, n)| n);
                let name = split_port(name).0.to_string();
                if is("ServerName") {
                    scope.server_name = Some(name);
                } else {
                    scope.aliases.push(name);
                }
            }
        }
        Ok(())
    }
}

/// The lower-case name of a section from the text after `<`.
fn section_name(open: &str) -> String {
    open.split(|c: char| c.is_whitespace() || c == '>')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn negation(argument: &str) -> (bool, &str) {
    match argument.trim().strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, argument.trim()),
    }
}

/// The source file name httpd knows a loaded module by (`mod_ssl.c` for
/// `LoadModule ssl_module .../mod_ssl.so`), when its identifier and file agree on it.
fn source_name(id: &str, file: &str) -> Option<String> {
    if let Some((_, source)) = SOURCE_NAMES.iter().find(|(known, _)| *known == id) {
        return Some(source.to_string());
    }
    let stem = Path::new(file).file_name()?.to_str()?.strip_suffix(".so")?;
    let name = id.strip_suffix("_module")?;
    (stem == format!("mod_{name}")).then(|| format!("{stem}.c"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A throwaway ServerRoot with a secret file in it; removed when dropped.
    struct Root(PathBuf);

    impl Root {
        fn new(name: &str) -> Root {
            use std::os::unix::fs::PermissionsExt;
            let dir =
                std::env::temp_dir().join(format!("memsessionctl-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            for (file, byte) in [("secret", 1u8), ("other-secret", 2)] {
                fs::write(dir.join(file), [byte; 32]).unwrap();
                fs::set_permissions(dir.join(file), fs::Permissions::from_mode(0o600)).unwrap();
            }
            Root(dir)
        }
        fn write(&self, file: &str, text: &str) {
            let path = self.0.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            // `@` stands for this root, so the texts stay short
            fs::write(path, text.replace('@', &self.0.display().to_string())).unwrap();
        }
        fn read(&self, known: &Known) -> Result<Found, String> {
            read(&self.0.join("apache2.conf"), &self.0, known)
        }
        fn scopes(&self, known: &Known) -> Vec<Scope> {
            self.read(known).unwrap().scopes()
        }
    }

    impl Drop for Root {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn servers(scope: &Scope) -> Vec<String> {
        scope
            .config
            .servers()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    const LOAD: &str = "LoadModule auth_memsession_module /usr/lib/apache2/modules/\
                        mod_auth_memsession.so\n";

    #[test]
    fn words_follow_apache_quoting() {
        assert_eq!(
            words("MemSessionServers unix:/a \"127.0.0.1:1\"  'b c'"),
            vec!["MemSessionServers", "unix:/a", "127.0.0.1:1", "b c"]
        );
        assert_eq!(words("  "), Vec::<String>::new());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard(b"*.conf", b"a.conf"));
        assert!(!wildcard(b"*.conf", b"a.load"));
        assert!(wildcard(b"a?c", b"abc"));
        assert!(wildcard(b"[a-c]x*", b"bxyz"));
        assert!(!wildcard(b"[!a-c]x", b"bx"));
        assert!(wildcard(b"*", b""));
        assert!(wildcard(b"**a*b", b"xxaxxb"));
    }

    #[test]
    fn follows_includes_and_records_where_each_setting_is() {
        let root = Root::new("includes");
        root.write(
            "apache2.conf",
            "# main\nIncludeOptional mods-enabled/*.load\nIncludeOptional mods-enabled/*.conf\n\
             IncludeOptional nothing/*.conf\nInclude sites-enabled/\n",
        );
        root.write("mods-enabled/auth_memsession.load", LOAD);
        root.write(
            "mods-enabled/auth_memsession.conf",
            "<IfModule auth_memsession_module>\n  MemSessionServers unix:/run/a.sock \\\n  \
             127.0.0.1:11311\n  MemSessionTimeout 300ms\n  MemSessionSecretFile @/secret\n\
             </IfModule>\n",
        );
        root.write("sites-enabled/site.conf", "MemSessionKeyPrefix main:\n");
        let found = root.read(&Known::default()).unwrap();
        assert!(found.any && found.vhosts.is_empty());
        let main = &found.main;
        assert_eq!(servers(main), ["unix:/run/a.sock", "127.0.0.1:11311"]);
        assert_eq!(main.config.timeout(), Duration::from_millis(300));
        assert_eq!(main.config.key_prefix(), "main:");
        let conf = root.0.join("mods-enabled/auth_memsession.conf");
        assert_eq!(main.origin.servers, [format!("{}:2", conf.display())]);
        assert_eq!(main.origin.secret, Some(format!("{}:5", conf.display())));
        let site = root.0.join("sites-enabled/site.conf");
        assert_eq!(main.origin.prefix, Some(format!("{}:1", site.display())));
        assert_eq!(found.files.len(), 4);

        root.write("bad.conf", "MemSessionTimeout soon\n");
        let error = read(&root.0.join("bad.conf"), &root.0, &Known::default()).unwrap_err();
        assert!(error.contains("bad.conf:1: MemSessionTimeout"), "{error}");
        root.write("loop.conf", "Include loop.conf\n");
        let error = read(&root.0.join("loop.conf"), &root.0, &Known::default()).unwrap_err();
        assert!(error.contains("nested"), "{error}");
    }

    #[test]
    fn vhost_only_settings_are_the_vhosts_and_the_unreachable_main_server_does_not_count() {
        let root = Root::new("vhost-only");
        root.write(
            "apache2.conf",
            &format!("{LOAD}Listen 80\nMemSessionSecretFile @/secret\nInclude site.conf\n"),
        );
        root.write(
            "site.conf",
            "<VirtualHost *:80>\n  ServerName portal.example.com\n  ServerAlias *.portal.example\n\
             \x20 MemSessionServers unix:/run/site.sock\n  MemSessionKeyPrefix site:\n\
             </VirtualHost>\n",
        );
        let found = root.read(&Known::default()).unwrap();
        assert!(!found.main_serves_requests());
        let scopes = found.scopes();
        assert_eq!(scopes.len(), 1, "{scopes:?}");
        let site = &scopes[0];
        assert_eq!(servers(site), ["unix:/run/site.sock"]);
        assert_eq!(site.config.key_prefix(), "site:");
        assert_eq!(site.config.secrets().unwrap().current.as_bytes(), &[1; 32]);
        let conf = root.0.join("site.conf").display().to_string();
        assert_eq!(site.origin.servers, [format!("{conf}:4")]);
        assert_eq!(site.origin.prefix, Some(format!("{conf}:5")));
        let main_conf = root.0.join("apache2.conf").display().to_string();
        assert_eq!(
            site.origin.secret,
            Some(format!("{main_conf}:3")),
            "inherited"
        );
        assert!(site.answers_to("PORTAL.example.com"));
        assert!(site.answers_to("a.portal.example"));
        assert!(!site.answers_to("example.com"));
        assert!(
            site.label().contains("<VirtualHost *:80> at"),
            "{}",
            site.label()
        );

        // a Listen no virtual host covers reaches the main server, defaults and all
        root.write(
            "apache2.conf",
            &format!(
                "{LOAD}Listen 80\nListen 8080\nMemSessionSecretFile @/secret\n\
                 Include site.conf\n"
            ),
        );
        let scopes = root.scopes(&Known::default());
        assert_eq!(scopes.len(), 2);
        assert_eq!(scopes[0].at, "main server");
        assert_eq!(servers(&scopes[0]), ["unix:/run/memsession/memcached.sock"]);
        assert!(
            scopes[0].origin.servers.is_empty(),
            "the default, from no line"
        );
    }

    #[test]
    fn two_vhosts_with_different_prefixes() {
        let root = Root::new("two-vhosts");
        root.write(
            "apache2.conf",
            &format!(
                "{LOAD}Listen 443\nMemSessionServers unix:/run/shared.sock\n\
                 MemSessionSecretFile @/secret\n\
                 <VirtualHost *:443>\nServerName a.example\nMemSessionKeyPrefix a:\n\
                 </VirtualHost>\n\
                 <VirtualHost *:443>\nServerName b.example:443\nMemSessionKeyPrefix b:\n\
                 MemSessionSecretFile @/other-secret\n</VirtualHost>\n"
            ),
        );
        let scopes = root.scopes(&Known::default());
        let summary: Vec<(String, Vec<String>, String, u8)> = scopes
            .iter()
            .map(|s| {
                (
                    s.names().join(" "),
                    servers(s),
                    s.config.key_prefix().to_string(),
                    s.config.secrets().unwrap().current.as_bytes()[0],
                )
            })
            .collect();
        let shared = vec!["unix:/run/shared.sock".to_string()];
        assert_eq!(
            summary,
            [
                ("a.example".into(), shared.clone(), "a:".into(), 1),
                ("b.example".into(), shared, "b:".into(), 2),
            ]
        );
    }

    #[test]
    fn ifdefine_alternatives_follow_the_defines_httpd_gets() {
        let root = Root::new("ifdefine");
        root.write(
            "apache2.conf",
            &format!(
                "{LOAD}MemSessionSecretFile @/secret\n<IfDefine STAGING>\n\
                 MemSessionServers unix:/run/staging.sock\n  Include staging.conf\n\
                 </IfDefine>\n<IfDefine !STAGING>\nMemSessionServers unix:/run/live.sock\n\
                 </IfDefine>\n"
            ),
        );
        // a false branch is skipped with its includes: this file does not exist
        let live = root.scopes(&Known::default());
        assert_eq!(servers(&live[0]), ["unix:/run/live.sock"]);
        root.write("staging.conf", "MemSessionKeyPrefix staging:\n");
        let known = Known {
            defines: ["STAGING".to_string()].into(),
            ..Known::default()
        };
        let staging = root.scopes(&known);
        assert_eq!(servers(&staging[0]), ["unix:/run/staging.sock"]);
        assert_eq!(staging[0].config.key_prefix(), "staging:");

        // Define in the configuration counts from where it is read
        root.write(
            "apache2.conf",
            &format!(
                "{LOAD}MemSessionSecretFile @/secret\n<IfDefine LATER>\n\
                 MemSessionKeyPrefix early:\n</IfDefine>\nDefine LATER\n<IfDefine LATER>\n\
                 MemSessionKeyPrefix late:\n</IfDefine>\n"
            ),
        );
        assert_eq!(
            root.scopes(&Known::default())[0].config.key_prefix(),
            "late:"
        );

        // envvars that computes APACHE_ARGUMENTS: the -D names are unknown, so refused
        let mut known = Known::default();
        root.write("envvars", "export APACHE_ARGUMENTS=\"$EXTRA\"\n");
        known.read_envvars(&root.0.join("envvars")).unwrap();
        let error = root.read(&known).unwrap_err();
        assert!(
            error.contains("<IfDefine LATER> cannot be decided")
                && error.contains("computes APACHE_ARGUMENTS")
                && error.contains("MemSessionKeyPrefix at"),
            "{error}"
        );
    }

    #[test]
    fn envvars_gives_literal_variables_and_define_names() {
        let root = Root::new("envvars");
        root.write(
            "envvars",
            "unset HOME\nif [ x ]; then\n\tSUFFIX=\"-$X\"\nelse\n\tSUFFIX=\nfi\n\
             export APACHE_RUN_USER=www-data\nexport APACHE_RUN_DIR=/var/run/apache2$SUFFIX\n\
             #export APACHE_ARGUMENTS=-DNOPE\nexport APACHE_ARGUMENTS='-D SSL -DPROD -k'\n\
             export SOCKET_DIR=\"/run/memsession\"\n",
        );
        let mut known = Known::default();
        known.read_envvars(&root.0.join("envvars")).unwrap();
        assert_eq!(
            known.defines,
            ["PROD".to_string(), "SSL".to_string()].into()
        );
        assert!(known.defines_unknown.is_none());
        assert_eq!(
            known.envvars["APACHE_RUN_USER"].as_deref(),
            Some("www-data")
        );
        assert_eq!(known.envvars["APACHE_RUN_DIR"], None);
        assert_eq!(known.envvars["SUFFIX"], None, "set inside if");
        root.write(
            "apache2.conf",
            &format!(
                "{LOAD}MemSessionSecretFile @/secret\n\
                 MemSessionServers unix:${{SOCKET_DIR}}/memcached.sock\n"
            ),
        );
        assert_eq!(
            servers(&root.scopes(&known)[0]),
            ["unix:/run/memsession/memcached.sock"]
        );
        root.write(
            "apache2.conf",
            &format!("{LOAD}MemSessionSecretFile @/secret\nMemSessionServers unix:${{APACHE_RUN_DIR}}/m.sock\n"),
        );
        let error = root.read(&known).unwrap_err();
        assert!(
            error.contains("${APACHE_RUN_DIR} has no known value"),
            "{error}"
        );

        root.write("envvars", "export APACHE_ARGUMENTS='-f /etc/other.conf'\n");
        let error = Known::default()
            .read_envvars(&root.0.join("envvars"))
            .unwrap_err();
        assert!(error.contains("-f"), "{error}");
    }

    #[test]
    fn ifmodule_follows_the_modules_loaded_so_far() {
        let root = Root::new("ifmodule");
        let text = |first: &str| {
            format!(
                "{first}MemSessionSecretFile @/secret\nMemSessionServers unix:/run/a.sock\n\
                 <IfModule mod_ssl.c>\nMemSessionKeyPrefix ssl:\n</IfModule>\n\
                 <IfModule !ssl_module>\nMemSessionKeyPrefix plain:\n</IfModule>\n\
                 <IfModule mod_version.c>\nMemSessionTimeout 2s\n</IfModule>\n\
                 <IfModule mpm_event_module>\nMemSessionTimeout 3s\n</IfModule>\n"
            )
        };
        root.write(
            "apache2.conf",
            &text("LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so\n"),
        );
        let with_ssl = &root.scopes(&Known::default())[0];
        assert_eq!(with_ssl.config.key_prefix(), "ssl:");
        assert_eq!(
            with_ssl.config.timeout(),
            Duration::from_secs(2),
            "mod_version is compiled in; no MPM loaded"
        );
        root.write(
            "apache2.conf",
            &text("LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n"),
        );
        let without = &root.scopes(&Known::default())[0];
        assert_eq!(without.config.key_prefix(), "plain:");
        assert_eq!(without.config.timeout(), Duration::from_secs(3));

        // the module's own directives inside <IfModule> of a module not loaded: nothing found
        root.write(
            "apache2.conf",
            "<IfModule auth_memsession_module>\nMemSessionServers unix:/run/a.sock\n\
             </IfModule>\n",
        );
        assert!(!root.read(&Known::default()).unwrap().any);

        // a file name when a loaded module's file name cannot be known: refused
        root.write(
            "apache2.conf",
            &text("LoadModule php_module /usr/lib/apache2/modules/libphp8.2.so\n"),
        );
        let error = root.read(&Known::default()).unwrap_err();
        assert!(
            error.contains("<IfModule mod_ssl.c> cannot be decided")
                && error.contains("php_module"),
            "{error}"
        );
    }

    #[test]
    fn what_cannot_be_decided_is_refused_only_where_it_matters() {
        let root = Root::new("undecided");
        let base = format!("{LOAD}MemSessionSecretFile @/secret\nMemSessionServers unix:/a\n");
        // harmless content in an undecidable section is fine
        root.write(
            "apache2.conf",
            &format!(
                "{base}<IfVersion >= 2.4>\nKeepAlive On\n<Location />\n</Location>\n</IfVersion>\n"
            ),
        );
        assert_eq!(root.scopes(&Known::default()).len(), 1);
        for (section, inside, expect) in [
            (
                "IfVersion >= 2.4.50",
                "MemSessionKeyPrefix v:",
                "httpd's version",
            ),
            (
                "IfDirective SSLEngine",
                "MemSessionKeyPrefix v:",
                "directives",
            ),
            (
                "Macro Site $name",
                "MemSessionKeyPrefix $name:",
                "mod_macro",
            ),
            (
                "IfVersion < 3",
                "Include more.conf",
                "it holds MemSessionKeyPrefix",
            ),
            (
                "IfVersion < 3",
                "LoadModule x_module mod_x.so",
                "it holds LoadModule",
            ),
            (
                "IfVersion < 3",
                "<VirtualHost *:80>",
                "it holds <VirtualHost>",
            ),
            ("IfVersion < 3", "Define STAGING", "it holds Define"),
        ] {
            root.write("more.conf", "MemSessionKeyPrefix v:\n");
            let close = section.split(' ').next().unwrap();
            root.write(
                "apache2.conf",
                &format!("{base}<{section}>\n{inside}\n</{close}>\n"),
            );
            let error = root.read(&Known::default()).unwrap_err();
            assert!(
                error.contains("cannot be decided") || error.contains("does not do"),
                "{section}: {error}"
            );
            assert!(error.contains(expect), "{section}: {error}");
            assert!(error.contains("apache2.conf:4"), "{section}: {error}");
        }
        // server directives where httpd refuses them
        root.write(
            "apache2.conf",
            &format!("{base}<Location /app>\nMemSessionKeyPrefix x:\n</Location>\n"),
        );
        let error = root.read(&Known::default()).unwrap_err();
        assert!(error.contains("not allowed inside <location>"), "{error}");
    }

    #[test]
    fn listen_and_vhost_addresses() {
        assert!(covers("*:80", None, "80"));
        assert!(covers("_default_:443", Some("10.0.0.1"), "443"));
        assert!(!covers("*:80", None, "443"));
        assert!(covers("10.0.0.1:80", Some("10.0.0.1"), "80"));
        assert!(
            !covers("10.0.0.1:80", None, "80"),
            "other addresses reach main"
        );
        assert!(covers("*", None, "8080"));
        assert!(covers("[::1]:80", Some("[::1]"), "80"));
        assert_eq!(split_port("[::1]:80"), ("[::1]", Some("80")));
        assert_eq!(split_port("80"), ("80", None));
        assert_eq!(
            source_name("ssl_module", "/x/mod_ssl.so").as_deref(),
            Some("mod_ssl.c")
        );
        assert_eq!(source_name("php_module", "/x/libphp8.2.so"), None);
        assert_eq!(
            source_name("mpm_event_module", "/x/mod_mpm_event.so").as_deref(),
            Some("event.c")
        );
    }
}
