//! The module crate's rlib bundles the C shim (its `register_hooks` and directive table),
//! whose httpd symbols (`ap_hook_*`, ...) live in the apache2 executable, not in a library.
//! cargo-fuzz builds with one codegen unit, so the shim's object is pulled into the fuzz
//! binaries even though no fuzzed code reaches it; let those references stay unresolved...
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,--unresolved-symbols=ignore-all");
    // ...and bound lazily, so the loader does not look for them at start-up either. APR is
    // a real library: link it, so the function addresses the shim takes resolve.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,lazy");
    println!("cargo:rustc-link-arg-bins=-lapr-1");
}
