//! Kerberos formats, parsed without libkrb5.
pub mod ccache;
