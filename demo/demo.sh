#!/bin/sh
# make demo: a throwaway memcached and httpd on loopback with mod_auth_memsession, and a
# walk through login -> cookie -> protected page -> logout -> refused. Cleans up on exit.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
module="$repo/build/mod_auth_memsession.so"
[ -f "$module" ] || { echo "build the module first: make" >&2; exit 1; }

work=$(mktemp -d /tmp/memsession-demo.XXXXXX)
chmod 0755 "$work"
cleanup() {
    [ -f "$work/httpd.pid" ] && kill "$(cat "$work/httpd.pid")" 2>/dev/null || true
    [ -f "$work/memcached.pid" ] && kill "$(cat "$work/memcached.pid")" 2>/dev/null || true
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. memcached on a UNIX socket in $work"
memcached -d -u root -s "$work/memcached.sock" -a 0777 -m 16 -P "$work/memcached.pid"
for _ in $(seq 50); do [ -S "$work/memcached.sock" ] && break; sleep 0.1; done

mkdir -p "$work/htdocs" "$work/cgi-bin" "$work/logs"
htpasswd -bc "$work/htpasswd" alice alicepw 2>/dev/null
cat > "$work/cgi-bin/whoami.cgi" <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\n\n'
echo "REMOTE_USER=$REMOTE_USER"
echo "AUTH_TYPE=$AUTH_TYPE"
echo "HTTP_X_REMOTE_USER=${HTTP_X_REMOTE_USER:-}"
CGI
chmod 0755 "$work/cgi-bin/whoami.cgi"
mods=/usr/lib/apache2/modules
cat > "$work/httpd.conf" <<CONF
ServerRoot "$work"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$work/httpd.pid"
ErrorLog "$work/logs/error.log"
LogLevel warn auth_memsession:info
User www-data
Group www-data
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authn_core_module $mods/mod_authn_core.so
LoadModule authn_file_module $mods/mod_authn_file.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule authz_user_module $mods/mod_authz_user.so
LoadModule auth_basic_module $mods/mod_auth_basic.so
LoadModule alias_module $mods/mod_alias.so
LoadModule cgid_module $mods/mod_cgid.so
LoadModule auth_memsession_module $module
ScriptSock "$work/cgid.sock"
DocumentRoot "$work/htdocs"

MemSessionServers unix:$work/memcached.sock
MemSessionTimeout 200ms

# Plain http on loopback for the demo only: real sites keep the default (Secure).
MemSessionCookieSecure Off

<Location /login>
    AuthType Basic
    AuthName "demo"
    AuthBasicProvider file
    AuthUserFile "$work/htpasswd"
    Require valid-user
    SetHandler memsession-login
</Location>
ScriptAlias /app/whoami "$work/cgi-bin/whoami.cgi"
<Location /app>
    AuthType MemSession
    MemSessionUnauthenticated auto
    MemSessionUserHeader X-Remote-User
    Require valid-user
</Location>
<Location /logout>
    SetHandler memsession-logout
    MemSessionLogoutRedirect /
</Location>
CONF

step "2. httpd on http://127.0.0.1:$port with the module"
/usr/sbin/apache2 -f "$work/httpd.conf" -k start
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done

base="http://127.0.0.1:$port"
step "3. the protected page without a session: an API client gets 401, a browser is sent to /login"
show curl -s -o /dev/null -w '%{http_code}\n' "$base/app/whoami"
show curl -s -o /dev/null -w '%{http_code} -> %{redirect_url}\n' -H 'Accept: text/html' -H 'Sec-Fetch-Mode: navigate' "$base/app/whoami"

step "4. log in once (Basic here; Negotiate works the same way) and receive the session cookie"
show curl -s -o /dev/null -D "$work/login.headers" -u alice:alicepw "$base/login?return=/app/whoami"
grep -i -E '^(HTTP|location|set-cookie)' "$work/login.headers"
cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: \(memsession=[^;]*\).*/\1/p' "$work/login.headers" | tr -d '\r')

step "5. ride the cookie: no password, the backend sees REMOTE_USER"
show curl -s -H "Cookie: $cookie" "$base/app/whoami"

step "6. what memcached holds: a hashed key and an encrypted record, no cookie and no user name"
printf 'lru_crawler metadump all\r\n' | python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
data=b""
while not data.endswith(b"END\r\n"): data+=s.recv(65536)
print(data.decode().strip())' "$work/memcached.sock"

step "7. log out (POST from this site), then the same cookie is refused"
show curl -s -o /dev/null -w '%{http_code} -> %{redirect_url}\n' -X POST -H "Origin: $base" -H "Cookie: $cookie" "$base/logout"
show curl -s -o /dev/null -w '%{http_code}\n' -H "Cookie: $cookie" "$base/app/whoami"

step "done — the module's log lines:"
grep auth_memsession "$work/logs/error.log" | sed 's/^/  /' | tail -n 8
echo
echo "Explore: the config was $work/httpd.conf (removed on exit). README.md explains every directive."
