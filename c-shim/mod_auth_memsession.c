/*
 * mod_auth_memsession: the C shim.
 *
 * This file is a table, not code: the module declaration, the directive table and one-line
 * trampolines. Every decision is made in Rust (src/); see memsession.h for the contract.
 */
#include "memsession.h"
#include "ap_provider.h"

module AP_MODULE_DECLARE_DATA auth_memsession_module;
APLOG_USE_MODULE(auth_memsession);

/* ---- directives ------------------------------------------------------------------- */

static const char *dir_directive(cmd_parms *cmd, void *dir_config, const char *arg)
{
    return memsession_rs_dir_directive(cmd, dir_config, cmd->cmd->name, arg);
}

static const char *dir_flag(cmd_parms *cmd, void *dir_config, int on)
{
    return memsession_rs_dir_directive(cmd, dir_config, cmd->cmd->name, on ? "On" : "Off");
}

static const char *server_directive(cmd_parms *cmd, void *unused, const char *arg)
{
    void *server_config = memsession_c_server_config(cmd->server);
    (void)unused;
    return memsession_rs_server_directive(cmd, server_config, cmd->cmd->name, arg);
}

static const char *server_directive12(cmd_parms *cmd, void *unused, const char *first,
                                      const char *second)
{
    void *server_config = memsession_c_server_config(cmd->server);
    (void)unused;
    return memsession_rs_server_directive2(cmd, server_config, cmd->cmd->name, first, second);
}

#define DIR_TAKE1(name, help) \
    AP_INIT_TAKE1(name, dir_directive, NULL, OR_AUTHCFG | ACCESS_CONF | RSRC_CONF, help)
#define DIR_FLAG(name, help) \
    AP_INIT_FLAG(name, dir_flag, NULL, OR_AUTHCFG | ACCESS_CONF | RSRC_CONF, help)
#define DIR_ITERATE(name, help) \
    AP_INIT_ITERATE(name, dir_directive, NULL, OR_AUTHCFG | ACCESS_CONF | RSRC_CONF, help)
/* Directives that mint sessions, lend credentials, trust or weaken: the administrator's
 * alone. Without OR_AUTHCFG, httpd refuses them in .htaccess, naming the directive. */
#define ADMIN_TAKE1(name, help) \
    AP_INIT_TAKE1(name, dir_directive, NULL, ACCESS_CONF | RSRC_CONF, help)
#define ADMIN_FLAG(name, help) \
    AP_INIT_FLAG(name, dir_flag, NULL, ACCESS_CONF | RSRC_CONF, help)
#define ADMIN_ITERATE(name, help) \
    AP_INIT_ITERATE(name, dir_directive, NULL, ACCESS_CONF | RSRC_CONF, help)
#define SERVER_TAKE1(name, help) \
    AP_INIT_TAKE1(name, server_directive, NULL, RSRC_CONF, help)
#define SERVER_ITERATE(name, help) \
    AP_INIT_ITERATE(name, server_directive, NULL, RSRC_CONF, help)

static const command_rec memsession_directives[] = {
    SERVER_ITERATE("MemSessionServers",
                   "memcached servers: unix:/path/to.sock or host[:port], one or more"),
    SERVER_TAKE1("MemSessionTimeout",
                 "bound on every memcached operation, e.g. 200ms"),
    SERVER_TAKE1("MemSessionLocalCache",
                 "how long a process may reuse a session it validated (0 = always ask)"),
    SERVER_TAKE1("MemSessionKeyPrefix", "namespace of this deployment's keys in memcached"),
    SERVER_TAKE1("MemSessionReplicas",
                 "1: each session also on a second server of the farm (default 0)"),
    AP_INIT_TAKE12("MemSessionSecretFile", server_directive12, NULL, RSRC_CONF,
                   "the server secret (root-only file, 32+ random bytes), then optionally the "
                   "previous one, whose sessions stay valid until they end"),
    SERVER_TAKE1("MemSessionTLSCAFile",
                 "PEM CA file: TCP memcached servers are reached over TLS, verified by it"),
    AP_INIT_TAKE2("MemSessionTLSClientCertificate", server_directive12, NULL, RSRC_CONF,
                  "PEM certificate chain and root-only private key shown to memcached"),
    SERVER_TAKE1("MemSessionAuthFile",
                 "root-only file with user:password for memcached's ASCII authentication"),
    ADMIN_FLAG("MemSession",
             "On: a session cookie short-circuits this location's AuthType, "
             "and that auth issues a session on success"),
    DIR_TAKE1("MemSessionCookieName", "name of the session cookie"),
    DIR_TAKE1("MemSessionCookiePath", "Path attribute of the session cookie"),
    ADMIN_TAKE1("MemSessionCookieDomain", "Domain attribute of the session cookie"),
    DIR_TAKE1("MemSessionCookieSameSite", "SameSite attribute: Lax, Strict or None"),
    ADMIN_FLAG("MemSessionCookieSecure", "Secure attribute (Off only for plain-http testing)"),
    DIR_FLAG("MemSessionCookiePersistent",
             "On: the cookie carries Max-Age; Off: a browser-session cookie"),
    DIR_TAKE1("MemSessionInactivityTimeout", "sliding inactivity timeout (0 = none)"),
    DIR_TAKE1("MemSessionMaxLifetime", "absolute lifetime from login (0 = none)"),
    DIR_FLAG("MemSessionCapToCredentials",
             "a session never outlives the Kerberos credentials it was created with"),
    DIR_TAKE1("MemSessionUnauthenticated",
              "answer to a request without a valid session: 401, redirect or auto"),
    DIR_TAKE1("MemSessionLoginURL", "where unauthenticated browsers are sent"),
    DIR_TAKE1("MemSessionLogoutRedirect", "where memsession-logout sends the browser"),
    ADMIN_FLAG("MemSessionLogoutAllowGet", "accept GET (not only POST) at memsession-logout"),
    DIR_TAKE1("MemSessionUserHeader",
              "request header carrying the user to backends (client copies are removed)"),
    ADMIN_FLAG("MemSessionDelegation",
             "expose the session's stored Kerberos credentials to the backend"),
    ADMIN_TAKE1("MemSessionDelegationDir",
              "directory for the per-request credential caches of MemSessionDelegation"),
    ADMIN_ITERATE("MemSessionPasswordProvider",
                "authn providers memsession-login-form checks passwords with (default: file)"),
    ADMIN_TAKE1("MemSessionKerberosRealm",
              "memsession-login-form checks passwords by asking this realm's KDC for a TGT"),
    ADMIN_TAKE1("MemSessionKerberosKeytab",
              "keytab proving MemSessionKerberosRealm's TGTs come from the real KDC"),
    ADMIN_FLAG("MemSessionCSRFCheck",
             "unsafe methods riding the cookie must come from this site or a trusted origin"),
    ADMIN_ITERATE("MemSessionTrustedOrigin",
                "origins (scheme://host[:port]) trusted for CSRF and return paths"),
    DIR_FLAG("MemSessionExtend", "whether a request here slides the inactivity window"),
    ADMIN_TAKE1("MemSessionLoginLimitUser",
              "failed password logins per user per window at memsession-login-form, or Off"),
    ADMIN_TAKE1("MemSessionLoginLimitAddress",
              "failed password logins per client address per window, or Off"),
    ADMIN_TAKE1("MemSessionLoginLimitWindow",
              "how long a failed password login counts against its budgets (e.g. 10m)"),
    ADMIN_TAKE1("MemSessionMintLimit",
              "sessions MemSession On may issue per user per minute, or Off"),
    ADMIN_FLAG("MemSessionStripCookie",
             "take the session cookie out of requests before backends see them"),
    {NULL}
};

/* ---- helpers Rust calls ----------------------------------------------------------- */

void *memsession_c_dir_config(const request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &auth_memsession_module);
}

void *memsession_c_server_config(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &auth_memsession_module);
}

void *memsession_c_request_state(const request_rec *r)
{
    return ap_get_module_config(r->request_config, &auth_memsession_module);
}

void memsession_c_set_request_state(request_rec *r, void *state)
{
    ap_set_module_config(r->request_config, &auth_memsession_module, state);
}

int memsession_c_request_log_enabled(const request_rec *r, int level)
{
    return APLOG_R_IS_LEVEL(r, level);
}

void memsession_c_log_request(const request_rec *r, int level, const char *message)
{
    ap_log_rerror(APLOG_MARK, level | APLOG_NOERRNO, 0, r, "%s", message);
}

int memsession_c_server_log_enabled(const server_rec *s, int level)
{
    return APLOG_IS_LEVEL(s, level);
}

void memsession_c_log_server(const server_rec *s, int level, const char *message)
{
    ap_log_error(APLOG_MARK, level | APLOG_NOERRNO, 0, s, "%s", message);
}

int memsession_c_check_password(request_rec *r, const char *provider, const char *user,
                                const char *password)
{
    const authn_provider *found =
        ap_lookup_provider(AUTHN_PROVIDER_GROUP, provider, AUTHN_PROVIDER_VERSION);
    if (found == NULL || found->check_password == NULL) {
        return -1;
    }
    /* Providers and the logs expect to know which provider answered. */
    apr_table_setn(r->notes, AUTHN_PROVIDER_NAME_NOTE, provider);
    return found->check_password(r, user, password);
}

static ap_filter_rec_t *private_filter_handle;

void memsession_c_add_private_filter(request_rec *r)
{
    ap_add_output_filter_handle(private_filter_handle, NULL, r, r->connection);
}

int memsession_c_is_dry_run(void)
{
    return ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG;
}

int memsession_c_is_config_test(void)
{
    return ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST;
}

/* ---- hooks ------------------------------------------------------------------------ */

static apr_status_t private_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    memsession_rs_make_private(f->r);
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

static void register_hooks(apr_pool_t *pool)
{
    (void)pool;
    ap_hook_post_config(memsession_rs_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(memsession_rs_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* FIRST: with `MemSession On` a valid cookie must answer before the location's own
     * AuthType module (mod_auth_gssapi, mod_auth_basic) asks for credentials. */
    ap_hook_check_authn(memsession_rs_check_authn, NULL, NULL, APR_HOOK_FIRST,
                        AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_fixups(memsession_rs_fixups, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(memsession_rs_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_filter(memsession_rs_insert_filter, NULL, NULL, APR_HOOK_MIDDLE);
    /* After every content filter (mod_headers included), before the headers are sent. */
    private_filter_handle = ap_register_output_filter("MEMSESSION_PRIVATE", private_filter,
                                                      NULL, AP_FTYPE_PROTOCOL - 1);
}

module AP_MODULE_DECLARE_DATA auth_memsession_module = {
    STANDARD20_MODULE_STUFF,
    memsession_rs_dir_config_create,
    memsession_rs_dir_config_merge,
    memsession_rs_server_config_create,
    memsession_rs_server_config_merge,
    memsession_directives,
    register_hooks,
    AP_MODULE_FLAG_NONE
};
