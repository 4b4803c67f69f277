//! The Apache boundary: the only module with `unsafe`, and the only one that sees pointers
//! from Apache. Raw pointers become typed, lifetime-bound views once, where they enter
//! (`Request`, `Pool`); every `extern "C"` entry runs inside `boundary::guard`, so a panic
//! becomes a logged 500 (or an error message for a directive) and never crosses into C.
//! libkrb5, the other C library the module calls (password logins through Kerberos), is
//! reached from here too (`krb5_password`), so every `unsafe` stays in this one layer.
mod backend_cookie;
mod bindings;
mod boundary;
mod config_entries;
mod delegation;
mod handlers;
mod hooks;
mod krb5_password;
mod lifecycle;
mod log;
mod login_budget;
mod login_form;
mod minting;
mod mpm;
mod pool;
mod privacy;
mod request;
mod server_state;
mod shared_metrics;
mod status;
mod status_handler;
