//! `memsessionctl`: check, inspect and revoke mod_auth_memsession sessions from a shell.
//! All the logic is in `memsession::admin`; this only wires it to the process.
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let outcome = memsession::admin::run(&args, &mut std::io::stdin().lock(), now);
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    std::process::exit(outcome.code);
}
