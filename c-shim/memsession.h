/*
 * The C <-> Rust contract of mod_auth_memsession.
 *
 * bindgen reads this header (see build.rs), so the Rust side is generated from the same
 * declarations the shim compiles against: if the two sides drift, the build fails.
 *
 * Entries implemented in Rust (src/apache/entries.rs) are named memsession_rs_*.
 * Helpers implemented in C (c-shim/mod_auth_memsession.c) are named memsession_c_*: they
 * exist only because the Apache API they wrap is a macro Rust cannot call.
 */
#ifndef MEMSESSION_H
#define MEMSESSION_H

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_auth.h"
#include "apr_strings.h"
#include "apr_tables.h"
#include "apr_shm.h"
#include "apr_md5.h"
#include "ap_mpm.h"

/* ---- implemented in Rust ---------------------------------------------------------- */

void *memsession_rs_dir_config_create(apr_pool_t *pool, char *dir);
void *memsession_rs_dir_config_merge(apr_pool_t *pool, void *base, void *add);
void *memsession_rs_server_config_create(apr_pool_t *pool, server_rec *s);
void *memsession_rs_server_config_merge(apr_pool_t *pool, void *base, void *add);

/* One entry for every directive: `directive` is the name from the command table, `args`
 * the words Apache split (one word for TAKE1/FLAG/ITERATE calls). Returns NULL or an error
 * message allocated in cmd->pool. */
const char *memsession_rs_dir_directive(cmd_parms *cmd, void *dir_config,
                                        const char *directive, const char *arg);
const char *memsession_rs_server_directive(cmd_parms *cmd, void *server_config,
                                           const char *directive, const char *arg);
/* A server directive taking one or two words; `second` is NULL when only one was given. */
const char *memsession_rs_server_directive2(cmd_parms *cmd, void *server_config,
                                            const char *directive, const char *first,
                                            const char *second);

int memsession_rs_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                              server_rec *s);
void memsession_rs_child_init(apr_pool_t *pchild, server_rec *s);
int memsession_rs_check_authn(request_rec *r);
int memsession_rs_fixups(request_rec *r);
int memsession_rs_handler(request_rec *r);
void memsession_rs_insert_filter(request_rec *r);
/* Called by the MEMSESSION_PRIVATE output filter once, before the response's headers go. */
void memsession_rs_make_private(request_rec *r);

/* ---- implemented in C, called from Rust ------------------------------------------- */

void *memsession_c_dir_config(const request_rec *r);
void *memsession_c_server_config(const server_rec *s);
/* This module's slot in r->request_config: the session validated for this request. */
void *memsession_c_request_state(const request_rec *r);
void memsession_c_set_request_state(request_rec *r, void *state);
/* Logging under APLOG_USE_MODULE(auth_memsession), so `LogLevel auth_memsession:debug`
 * works. The message is passed through "%s": it is never a format string. */
int memsession_c_request_log_enabled(const request_rec *r, int level);
void memsession_c_log_request(const request_rec *r, int level, const char *message);
int memsession_c_server_log_enabled(const server_rec *s, int level);
void memsession_c_log_server(const server_rec *s, int level, const char *message);
/* Checks a password through the named Apache authn provider (file, dbm, ldap, an
 * AuthnProviderAlias...), as mod_auth_basic does. Returns an authn_status, or -1 when no
 * provider of that name is loaded. */
int memsession_c_check_password(request_rec *r, const char *provider, const char *user,
                                const char *password);
/* Adds the MEMSESSION_PRIVATE output filter to the request. */
void memsession_c_add_private_filter(request_rec *r);
/* True during the configuration dry run httpd does before the real start-up pass. */
int memsession_c_is_dry_run(void);
/* True under `httpd -t` (apachectl configtest), whose only pass is that dry run. */
int memsession_c_is_config_test(void);

#endif
