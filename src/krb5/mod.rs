//! Kerberos formats and rules, without libkrb5.
pub mod ccache;
pub mod kdc_guard;
pub mod login_name;
