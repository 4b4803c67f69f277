//! Generates the Rust view of the C contract (c-shim/memsession.h) with bindgen and compiles
//! the shim with cc. Include paths and defines come from the installed httpd (`apxs -q`) and
//! APR (`apr-1-config`), never from guesses: struct layouts depend on them.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn query(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run `{program}` ({error}): install apache2-dev (make deps does)")
        });
    if !output.status.success() {
        panic!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The flags that decide what the httpd and APR headers declare: include dirs and defines.
fn host_flags() -> Vec<String> {
    let apxs = env::var("APXS").unwrap_or_else(|_| "apxs".to_string());
    let mut flags = vec![format!("-I{}", query(&apxs, &["-q", "INCLUDEDIR"]))];
    let apr_config = query(&apxs, &["-q", "APR_CONFIG"]);
    let apr_config = if apr_config.is_empty() {
        "apr-1-config".to_string()
    } else {
        apr_config
    };
    for word in query(&apr_config, &["--cppflags", "--includes"]).split_whitespace() {
        flags.push(word.to_string());
    }
    for word in query(&apxs, &["-q", "EXTRA_CPPFLAGS"]).split_whitespace() {
        if word.starts_with("-D") || word.starts_with("-I") {
            flags.push(word.to_string());
        }
    }
    flags.dedup();
    flags
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=c-shim/memsession.h");
    println!("cargo:rerun-if-changed=c-shim/mod_auth_memsession.c");
    println!("cargo:rerun-if-env-changed=APXS");
    let flags = host_flags();

    let mut shim = cc::Build::new();
    shim.file("c-shim/mod_auth_memsession.c")
        .include("c-shim")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .flag("-fPIC");
    for flag in &flags {
        shim.flag(flag);
    }
    shim.compile("memsession_shim");

    let bindings = bindgen::Builder::default()
        .header("c-shim/memsession.h")
        .clang_args(&flags)
        .allowlist_function("memsession_.*")
        .allowlist_function("apr_table_(get|set|setn|unset|add|do)")
        .allowlist_function(
            "apr_palloc|apr_pstrmemdup|apr_pool_cleanup_register|apr_pool_cleanup_null",
        )
        .allowlist_function(
            "ap_auth_type|ap_auth_name|ap_construct_url|ap_set_content_type|ap_rwrite|ap_rflush",
        )
        .allowlist_function("ap_get_server_name_for_url|ap_get_server_port")
        .allowlist_function("ap_allow_methods|ap_mpm_query")
        .allowlist_var("AP_MPMQ_MAX_THREADS|AP_MPMQ_MAX_DAEMONS")
        .allowlist_function("apr_proc_kill")
        .allowlist_type("apr_proc_t")
        .allowlist_var("ESRCH")
        .allowlist_function("apr_shm_(create|baseaddr_get|size_get)|apr_pool_userdata_(get|set)")
        .allowlist_function("ap_setup_client_block|ap_should_client_block|ap_get_client_block")
        .allowlist_var("REQUEST_CHUNKED_DECHUNK")
        .allowlist_var("OR_AUTHCFG|OR_FILEINFO")
        .allowlist_function("apr_is_empty_table|apr_password_validate")
        .allowlist_type("htaccess_result")
        .allowlist_type("authn_status")
        .allowlist_var("OK|DECLINED|DONE|M_GET|M_POST|M_PUT|M_DELETE|M_OPTIONS|M_PATCH")
        .allowlist_var("APLOG_(EMERG|ALERT|CRIT|ERR|WARNING|NOTICE|INFO|DEBUG|TRACE1)")
        .allowlist_var("HTTP_.*")
        .allowlist_type("request_rec|server_rec|cmd_parms|apr_pool_t|apr_table_t|conn_rec")
        .allowlist_type("process_rec|apr_shm_t")
        .opaque_type("apr_pool_t|apr_table_t|apr_shm_t")
        .derive_debug(false)
        .derive_default(false)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen could not read c-shim/memsession.h with the httpd headers");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("apache_bindings.rs"))
        .expect("write bindings");
    krb5_bindings(&out);
}

/// The few libkrb5 calls of a password login through Kerberos (`MemSessionKerberosRealm`),
/// from Debian's libkrb5-dev.
fn krb5_bindings(out: &std::path::Path) {
    println!("cargo:rustc-link-lib=dylib=krb5");
    bindgen::Builder::default()
        .header_contents("memsession_krb5.h", "#include <krb5.h>\n")
        .allowlist_function("krb5_(init|free)_context|krb5_parse_name_flags|krb5_unparse_name")
        .allowlist_function("krb5_free_(unparsed_name|principal|cred_contents|data)")
        .allowlist_function("krb5_(get|free)_error_message")
        .allowlist_function("krb5_get_init_creds_(password|opt_alloc|opt_free)")
        .allowlist_function("krb5_get_init_creds_opt_set_change_password_prompt")
        .allowlist_function("krb5_verify_init_creds|krb5_verify_init_creds_opt_.*")
        .allowlist_function("krb5_kt_(resolve|default|close|start_seq_get|next_entry)")
        .allowlist_function("krb5_kt_(end_seq_get|free_entry)|krb5_copy_principal")
        .allowlist_function("krb5_marshal_credentials")
        .allowlist_var("KRB5_PRINCIPAL_PARSE_REQUIRE_REALM|KRB5_KT_END|KRB5_KDC_UNREACH")
        .allowlist_var("KRB5KDC_ERR_(C_PRINCIPAL_UNKNOWN|PREAUTH_FAILED|KEY_EXP|CLIENT_REVOKED)")
        .allowlist_var("KRB5KDC_ERR_(NAME_EXP|CLIENT_NOTYET|POLICY|NULL_KEY|ETYPE_NOSUPP)")
        .allowlist_var("KRB5KDC_ERR_(C_OLD_MAST_KVNO|WRONG_REALM)|KRB5KRB_AP_ERR_SKEW")
        .allowlist_var("KRB5_PREAUTH_FAILED|KRB5KDC_ERR_NONE")
        .allowlist_var("KRB5KRB_AP_ERR_BAD_INTEGRITY|KRB5_REALM_UNKNOWN|KRB5_REALM_CANT_RESOLVE")
        .derive_debug(false)
        .derive_default(false)
        .layout_tests(false)
        .generate_comments(false)
        .generate()
        .expect("bindgen could not read <krb5.h>: install libkrb5-dev (make deps does)")
        .write_to_file(out.join("krb5_bindings.rs"))
        .expect("write krb5 bindings");
}
