#!/bin/sh
# make demo: Kerberos once at /login, then the session cookie — on a throwaway realm.
#
# Everything runs on loopback in a temp dir and is removed on exit:
#   an MIT KDC for the realm DEMO.MEMSESSION.TEST (alice, HTTP/localhost and its keytab),
#   memcached on a UNIX socket, httpd with mod_auth_gssapi at /login and this module behind.
# Then: kinit -> curl --negotiate /login -> cookie -> a CGI showing REMOTE_USER and klist of
# the delegated ccache -> logout -> 401; then, with no ticket at all, a password form checked
# by the KDC from inside httpd (MemSessionKerberosRealm), whose TGT rides the session too.
#
#   DEMO_WAIT=1 demo/demo.sh   keep everything running at the end until you press Enter
#
# Needs root (the keytab and the ccache directories belong to www-data, httpd's user) and the
# packages build-aux/install-deps.sh installs (make demo runs it and builds the module first).
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
module="$repo/build/mod_auth_memsession.so"
mods=/usr/lib/apache2/modules
realm=DEMO.MEMSESSION.TEST
alice_pw=alice-demo-pw

die() { echo "demo: $*" >&2; exit 1; }
[ -f "$module" ] || die "build the module first: make"
[ "$(id -u)" = 0 ] || die "run as root (the keytab must belong to www-data): sudo make demo"
for tool in krb5kdc kdb5_util kadmin.local kinit klist kdestroy memcached curl /usr/sbin/apache2; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
        die "$tool is missing: run build-aux/install-deps.sh"
done
[ -f "$mods/mod_auth_gssapi.so" ] || die "mod_auth_gssapi is missing: apt-get install libapache2-mod-auth-gssapi"

work=$(mktemp -d /tmp/memsession-demo.XXXXXX)
chmod 0755 "$work"
kdc_pid=""
cleanup() {
    set +e
    [ -f "$work/httpd.pid" ] && kill "$(cat "$work/httpd.pid")" 2>/dev/null
    [ -f "$work/memcached.pid" ] && kill "$(cat "$work/memcached.pid")" 2>/dev/null
    [ -n "$kdc_pid" ] && kill "$kdc_pid" 2>/dev/null
    # wait (bounded) for them to go before removing their files
    for _ in $(seq 50); do
        alive=""
        [ -f "$work/httpd.pid" ] && kill -0 "$(cat "$work/httpd.pid")" 2>/dev/null && alive=1
        [ -n "$kdc_pid" ] && kill -0 "$kdc_pid" 2>/dev/null && alive=1
        [ -z "$alive" ] && break
        sleep 0.1
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# wait_for WHAT SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds or time is up
wait_for() {
    what=$1; tries=$(($2 * 10)); shift 2
    for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    die "$what not ready after $((tries / 10)) s"
}
tcp_open() {
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1"
}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
show() { printf '\033[36m$ %s\033[0m\n' "$*"; "$@"; }

kdc_port=$(free_port)
port=$(free_port)
base="http://localhost:$port"
krb="$work/krb5"
mkdir -p "$krb/clients"

# ---------------------------------------------------------------------------------------------
step "1. a throwaway Kerberos realm $realm, KDC on 127.0.0.1:$kdc_port"
cat > "$krb/krb5.conf" <<CONF
[libdefaults]
    default_realm = $realm
    dns_lookup_kdc = false
    dns_lookup_realm = false
    # the service name is taken as typed (HTTP/localhost), never canonicalised through DNS
    dns_canonicalize_hostname = false
    rdns = false
    forwardable = true
    udp_preference_limit = 1
[realms]
    $realm = {
        kdc = 127.0.0.1:$kdc_port
    }
[domain_realm]
    localhost = $realm
CONF
cat > "$krb/kdc.conf" <<CONF
[kdcdefaults]
    kdc_listen = 127.0.0.1:$kdc_port
    kdc_tcp_listen = 127.0.0.1:$kdc_port
[realms]
    $realm = {
        database_name = $krb/principal
        key_stash_file = $krb/stash
        acl_file = $krb/kadm5.acl
        max_life = 10h
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }
[logging]
    kdc = FILE:$krb/kdc.log
CONF
: > "$krb/kadm5.acl"
chmod 0644 "$krb/krb5.conf"
export KRB5_CONFIG="$krb/krb5.conf" KRB5_KDC_PROFILE="$krb/kdc.conf"
export KRB5CCNAME="FILE:$krb/clients/alice"
show kdb5_util -r "$realm" create -s -P demo-master-password >/dev/null
show kadmin.local -r "$realm" -q "addprinc -pw $alice_pw alice" >/dev/null
show kadmin.local -r "$realm" -q "addprinc -randkey HTTP/localhost" >/dev/null
show kadmin.local -r "$realm" -q "ktadd -k $krb/http.keytab HTTP/localhost" >/dev/null
# httpd's children run as www-data: the key must be readable by them, and by nobody else
chown www-data:www-data "$krb/http.keytab"; chmod 0600 "$krb/http.keytab"
for d in deleg lent rcache; do
    mkdir "$krb/$d"; chown www-data:www-data "$krb/$d"; chmod 0700 "$krb/$d"
done
krb5kdc -n -r "$realm" >"$krb/krb5kdc.out" 2>&1 &
kdc_pid=$!
wait_for "krb5kdc" 10 tcp_open "$kdc_port"
say "principals: alice@$realm (password $alice_pw), HTTP/localhost@$realm (keytab $krb/http.keytab, www-data 0600)"

# ---------------------------------------------------------------------------------------------
step "2. memcached on a UNIX socket"
memcached -d -u root -s "$work/memcached.sock" -a 0777 -m 16 -P "$work/memcached.pid"
wait_for "memcached" 5 test -S "$work/memcached.sock"
say "$work/memcached.sock"

# ---------------------------------------------------------------------------------------------
step "3. httpd on $base: mod_auth_gssapi at /login, mod_auth_memsession everywhere else"
mkdir -p "$work/htdocs" "$work/cgi-bin" "$work/logs"
# The server secret every store key is derived from: root-only, as the module insists.
(umask 077 && head -c 32 /dev/urandom > "$work/memsession.secret")
cat > "$work/cgi-bin/whoami.cgi" <<CGI
#!/bin/sh
export KRB5_CONFIG="$krb/krb5.conf"
printf 'Content-Type: text/plain\n\n'
echo "REMOTE_USER=\$REMOTE_USER"
echo "AUTH_TYPE=\$AUTH_TYPE"
echo "KRB5CCNAME=\${KRB5CCNAME:-}"
[ -n "\${KRB5CCNAME:-}" ] && echo "ccache file: \$(stat -c '%a %U' "\${KRB5CCNAME#FILE:}")"
echo "--- klist (the credentials stored with the session, lent to this request):"
klist -f 2>&1
CGI
chmod 0755 "$work/cgi-bin/whoami.cgi"
echo "memsession demo" > "$work/htdocs/index.html"
cat > "$work/httpd.conf" <<CONF
ServerRoot "$work"
ServerName localhost
Listen 127.0.0.1:$port
PidFile "$work/httpd.pid"
ErrorLog "$work/logs/error.log"
LogLevel warn auth_memsession:info
LogFormat "%h %u \"%r\" %>s Authorization:\"%{Authorization}i\"" demo
CustomLog "$work/logs/access.log" demo
User www-data
Group www-data
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authn_core_module $mods/mod_authn_core.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule authz_user_module $mods/mod_authz_user.so
LoadModule alias_module $mods/mod_alias.so
LoadModule cgid_module $mods/mod_cgid.so
LoadModule auth_gssapi_module $mods/mod_auth_gssapi.so
LoadModule auth_memsession_module $module
ScriptSock "$work/cgid.sock"
DocumentRoot "$work/htdocs"
<Directory "$work/htdocs">
    Require all granted
</Directory>

MemSessionServers unix:$work/memcached.sock
MemSessionTimeout 200ms
MemSessionSecretFile $work/memsession.secret
# Plain http on loopback for the demo only: real sites keep the default (Secure).
MemSessionCookieSecure Off
MemSessionDelegationDir $krb/lent

# The only place that speaks Negotiate. Delegated credentials land in GssapiDelegCcacheDir and
# mod_auth_gssapi exports KRB5CCNAME; memsession-login stores them with the session.
<Location /login>
    AuthType GSSAPI
    AuthName "demo Kerberos login"
    GssapiCredStore keytab:$krb/http.keytab
    GssapiAllowedMech krb5
    GssapiBasicAuth Off
    GssapiDelegCcacheDir $krb/deleg
    Require valid-user
    SetHandler memsession-login
</Location>

ScriptAlias /app/whoami "$work/cgi-bin/whoami.cgi"
<Location /app>
    AuthType MemSession
    MemSessionUnauthenticated auto
    MemSessionLoginURL /login
    MemSessionDelegation On
    Require valid-user
</Location>

# No ticket on the client: a password form checked by the realm's KDC (libkrb5 in httpd);
# the TGT it yields is stored with the session like delegated credentials.
<Location /login-password>
    SetHandler memsession-login-form
    MemSessionKerberosRealm $realm
    MemSessionKerberosKeytab $krb/http.keytab
</Location>

<Location /logout>
    SetHandler memsession-logout
    MemSessionLogoutRedirect /
</Location>
CONF
# libkrb5 inside httpd reads these: the realm's config, and a replay cache it may write
KRB5_CONFIG="$krb/krb5.conf" KRB5RCACHEDIR="$krb/rcache" /usr/sbin/apache2 -f "$work/httpd.conf" -k start
wait_for "httpd" 10 curl -s -o /dev/null --resolve "localhost:$port:127.0.0.1" "$base/"
say "config: $work/httpd.conf"
R="--resolve localhost:$port:127.0.0.1"   # keep 'localhost' (the service name) on 127.0.0.1

# ---------------------------------------------------------------------------------------------
step "4. without a session: an API client gets 401, a browser is sent to /login"
show curl -s $R -o /dev/null -w '%{http_code}\n' "$base/app/whoami"
show curl -s $R -o /dev/null -w '%{http_code} -> %{redirect_url}\n' -H 'Accept: text/html' \
    -H 'Sec-Fetch-Mode: navigate' "$base/app/whoami"

step "5. kinit: alice gets a forwardable TGT"
printf '%s\n' "$alice_pw" | kinit -f alice >/dev/null
show klist -f

step "6. curl --negotiate at /login (once), delegating the TGT: a 303 and the session cookie"
show curl -s $R -o /dev/null -D "$work/login.headers" --negotiate -u : --delegation always \
    "$base/login?return=/app/whoami"
grep -i -E '^(HTTP|location|set-cookie)' "$work/login.headers" | sed 's/^/   /'
cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: \(memsession=[^;]*\).*/\1/p' "$work/login.headers" | tr -d '\r')
[ -n "$cookie" ] || die "the login set no cookie; see $work/logs/error.log"

step "7. the cookie alone (no Kerberos on this request): REMOTE_USER and the delegated ccache"
show curl -s $R -H "Cookie: $cookie" "$base/app/whoami"
lent_empty() { [ -z "$(ls -A "$krb/lent")" ]; }
wait_for "removal of the lent ccache" 5 lent_empty
say "the lent ccache was removed when the request ended: $krb/lent is empty again"
say "access log (no Authorization header after the login):"
sed 's/Negotiate [A-Za-z0-9+\/=]*/Negotiate <token>/' "$work/logs/access.log" | sed 's/^/     /'

step "8. log out (POST from this site): the session and its stored credentials are deleted"
show curl -s $R -o /dev/null -w '%{http_code} -> %{redirect_url}\n' -X POST -H "Origin: $base" \
    -H "Cookie: $cookie" "$base/logout"
show curl -s $R -o /dev/null -w '%{http_code}\n' -H "Cookie: $cookie" "$base/app/whoami"

step "9. no ticket at all: a password form, checked by asking the KDC from inside httpd"
kdestroy -q 2>/dev/null || true
show curl -s $R -o /dev/null -D "$work/form.headers" -X POST -H "Origin: $base" \
    --data-urlencode user=alice --data-urlencode "password=$alice_pw" \
    --data-urlencode return=/app/whoami "$base/login-password"
grep -i -E '^(HTTP|location|set-cookie)' "$work/form.headers" | sed 's/^/   /'
cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: \(memsession=[^;]*\).*/\1/p' "$work/form.headers" | tr -d '\r')
[ -n "$cookie" ] || die "the password login set no cookie; see $work/logs/error.log"
say "the session carries the TGT the KDC issued to httpd, lent to the backend as in step 7:"
show curl -s $R -H "Cookie: $cookie" "$base/app/whoami"

step "done — the module's log lines:"
grep auth_memsession "$work/logs/error.log" | sed 's/^/   /' | tail -n 8
cat <<EXPLORE

Explore further (while DEMO_WAIT=1 keeps it running):
   export KRB5_CONFIG=$krb/krb5.conf KRB5CCNAME=FILE:$krb/clients/alice
   curl $R -v --negotiate -u : --delegation always -c $work/jar '$base/login?return=/app/whoami'
   curl $R -b $work/jar $base/app/whoami
   kinit -l 1m alice      # a short ticket: the session ends with it (MemSessionCapToCredentials)
   tail -f $work/logs/access.log $work/logs/error.log $krb/kdc.log
   A browser: chromium --auth-server-allowlist=localhost $base/app/whoami
   (Firefox: network.negotiate-auth.trusted-uris = localhost, allow-non-fqdn = true)
Everything lives in $work and is removed on exit.
EXPLORE
if [ "${DEMO_WAIT:-}" = 1 ]; then
    printf 'press Enter to stop and clean up '
    read -r _
fi
