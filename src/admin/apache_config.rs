//! Reading the module's server-scope settings out of an Apache configuration, the way httpd
//! would: `Include`/`IncludeOptional` (globs, relative to `ServerRoot`) are followed in order,
//! and each `MemSessionServers`/`MemSessionTimeout`/`MemSessionKeyPrefix` line of the main
//! server (outside `<VirtualHost>` and other sections; `<IfModule>`, `<IfDefine>`,
//! `<IfVersion>` and `<IfFile>` are read through) is applied with the module's own parser, so
//! the outcome is the module's: servers accumulate in the order listed, a later timeout or
//! prefix replaces an earlier one. Virtual-host settings are not read: give them with
//! `--servers`/`--prefix`.
use std::fs;
use std::path::{Path, PathBuf};

use crate::config::ServerConfig;

/// Include nesting deeper than this is a loop.
const MAX_DEPTH: usize = 16;
/// Files read in all; a glob matching more is refused rather than read forever.
const MAX_FILES: usize = 2000;
const SERVER_DIRECTIVES: [&str; 4] = [
    "MemSessionServers",
    "MemSessionTimeout",
    "MemSessionKeyPrefix",
    "MemSessionSecretFile",
];
const TRANSPARENT_SECTIONS: [&str; 4] = ["ifmodule", "ifdefine", "ifversion", "iffile"];

#[derive(Debug, Default)]
pub struct Found {
    pub config: ServerConfig,
    /// Files read, in order (for `check` to say where the settings came from).
    pub files: Vec<PathBuf>,
    /// Whether any MemSession server directive was seen.
    pub any: bool,
}

struct Reader {
    server_root: PathBuf,
    found: Found,
}

/// Reads `path` and everything it includes. `server_root` is where relative includes start
/// until a `ServerRoot` line says otherwise (Debian: `/etc/apache2`).
pub fn read(path: &Path, server_root: &Path) -> Result<Found, String> {
    let mut reader = Reader {
        server_root: server_root.to_path_buf(),
        found: Found::default(),
    };
    reader.file(path, 0, false)?;
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

/// `${NAME}` replaced from the environment (as httpd does with its envvars); unknown names
/// are left as they are.
fn expand(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match std::env::var(name) {
                    Ok(value) => out.push_str(&value),
                    Err(_) => out.push_str(&rest[start..start + 3 + end]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
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

impl Reader {
    fn file(&mut self, path: &Path, depth: usize, optional: bool) -> Result<(), String> {
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
                self.file(&entry, depth + 1, optional)?;
            }
            return Ok(());
        }
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(_) if optional => return Ok(()),
            Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
        };
        self.found.files.push(path.to_path_buf());
        let mut sections: Vec<String> = Vec::new();
        let mut pending = String::new();
        for (number, raw) in text.lines().enumerate() {
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
            if let Some(close) = line.strip_prefix("</") {
                let name = close.trim_end_matches('>').trim().to_ascii_lowercase();
                if let Some(position) = sections.iter().rposition(|s| *s == name) {
                    sections.truncate(position);
                }
                continue;
            }
            if let Some(open) = line.strip_prefix('<') {
                let name = open
                    .split(|c: char| c.is_whitespace() || c == '>')
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                sections.push(name);
                continue;
            }
            let main_scope = sections
                .iter()
                .all(|s| TRANSPARENT_SECTIONS.contains(&s.as_str()));
            let words = words(line);
            let Some(directive) = words.first() else {
                continue;
            };
            let args: Vec<String> = words[1..].iter().map(|w| expand(w)).collect();
            let at = || format!("{}:{}", path.display(), number + 1);
            if directive.eq_ignore_ascii_case("ServerRoot") && main_scope {
                if let Some(root) = args.first() {
                    self.server_root = PathBuf::from(root);
                }
            } else if directive.eq_ignore_ascii_case("Include")
                || directive.eq_ignore_ascii_case("IncludeOptional")
            {
                let optional = directive.eq_ignore_ascii_case("IncludeOptional");
                for arg in &args {
                    let target = self.server_root.join(arg);
                    let matches = expand_glob(&target)?;
                    if matches.is_empty() && !optional && !has_wildcard(arg) {
                        return Err(format!("{}: Include {arg}: no such file", at()));
                    }
                    for included in matches {
                        self.file(&included, depth + 1, optional)?;
                    }
                }
            } else if main_scope {
                if let Some(name) = SERVER_DIRECTIVES
                    .iter()
                    .find(|d| d.eq_ignore_ascii_case(directive))
                {
                    self.found.any = true;
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    self.found
                        .config
                        .set_words(name, &args)
                        .map_err(|error| format!("{}: {error}", at()))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
    fn follows_includes_and_reads_main_scope_only() {
        let dir = std::env::temp_dir().join(format!("memsessionctl-conf-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("mods-enabled")).unwrap();
        fs::create_dir_all(dir.join("sites-enabled")).unwrap();
        fs::write(
            dir.join("apache2.conf"),
            "# main\nIncludeOptional mods-enabled/*.conf\nIncludeOptional nothing/*.conf\n\
             Include sites-enabled/\n",
        )
        .unwrap();
        fs::write(
            dir.join("mods-enabled/auth_memsession.conf"),
            "<IfModule auth_memsession_module>\n  MemSessionServers unix:/run/a.sock \\\n  \
             127.0.0.1:11311\n  MemSessionTimeout 300ms\n</IfModule>\n",
        )
        .unwrap();
        fs::write(
            dir.join("mods-enabled/other.load"),
            "MemSessionTimeout 9s\n",
        )
        .unwrap();
        fs::write(
            dir.join("sites-enabled/site.conf"),
            "<VirtualHost *:80>\nMemSessionKeyPrefix vhost:\n</VirtualHost>\n\
             MemSessionKeyPrefix main:\n",
        )
        .unwrap();
        let found = read(&dir.join("apache2.conf"), &dir).unwrap();
        assert!(found.any);
        let servers: Vec<String> = found
            .config
            .servers()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(servers, ["unix:/run/a.sock", "127.0.0.1:11311"]);
        assert_eq!(found.config.timeout(), Duration::from_millis(300));
        assert_eq!(found.config.key_prefix(), "main:");
        assert_eq!(found.files.len(), 3);

        fs::write(dir.join("bad.conf"), "MemSessionTimeout soon\n").unwrap();
        let error = read(&dir.join("bad.conf"), &dir).unwrap_err();
        assert!(error.contains("bad.conf:1: MemSessionTimeout"), "{error}");
        fs::write(dir.join("loop.conf"), "Include loop.conf\n").unwrap();
        assert!(read(&dir.join("loop.conf"), &dir)
            .unwrap_err()
            .contains("nested"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
