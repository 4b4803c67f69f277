#!/bin/sh
# make package-test: the Debian package as an administrator meets it, on this machine, as root
# (CI's fresh Debian 12 machine). Usage: test_deb.sh build/libapache2-mod-auth-memsession_*.deb
#
# lintian; apt-get install; nothing enabled and the secret made (root, 0600, 32 bytes);
# a2enmod, then apache2ctl -M and -t; reinstall and remove keep the secret and an edited
# conffile, remove disables the module and reinstall enables it again (unless the
# administrator disabled it); an existing secret is never replaced; purge removes conffiles,
# secret and module state. The machine is left as it was found, even on failure or
# interruption (trap): the package purged, the module state forgotten, and a final check
# that /etc/apache2, Apache's module state and systemd's unit state are what they were.
# The machine's apache2 is never started or restarted: while the test runs, a policy-rc.d
# (Debian's switch for maintainer scripts) denies it, unless the machine already has one.
set -u

deb=${1:?usage: test_deb.sh PATH.deb}
pkg=libapache2-mod-auth-memsession
secret=/etc/apache2/memsession.secret
avail=/etc/apache2/mods-available
docdir=/usr/share/doc/$pkg
policy=/usr/sbin/policy-rc.d
policy_mark="# written by mod_auth_memsession's package-test"
export DEBIAN_FRONTEND=noninteractive
apt_get() {
    apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold -y -q "$@"
}

passed=0
failed=0
check() { # check DESCRIPTION COMMAND...: one verdict
    desc=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok: $desc"
    else
        failed=$((failed + 1))
        echo "FAIL: $desc"
    fi
}
run() { # run COMMAND...: a step that must succeed; its output is shown when it does not
    out=$("$@" 2>&1)
    rc=$?
    [ "$rc" -eq 0 ] || printf '%s\n(exit %s: %s)\n' "$out" "$rc" "$*" >&2
    return "$rc"
}
status() { dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null || echo not-installed; }
is_status() { [ "$(status)" = "$1" ]; }
module_state() { # a2query's verdict: 0 enabled, 1 unknown, 32 disabled by admin, 33 by maintainer
    rc=0
    a2query -q -m auth_memsession || rc=$?
    echo "$rc"
}
module_is() { [ "$(module_state)" = "$1" ]; }
stat_is() { [ "$(stat -c '%U:%G %a %s' "$1" 2>/dev/null)" = "$2" ]; }
same_file() { [ "$(sha256sum < "$1" 2>/dev/null)" = "$2" ]; }
regular_file() { [ -f "$1" ] && [ ! -L "$1" ]; }
absent() { for f in "$@"; do [ ! -e "$f" ] && [ ! -L "$f" ] || return 1; done; }
present() { for f in "$@"; do [ -f "$f" ] || return 1; done; }
conffiles_listed() {
    c=$(dpkg-query -W -f '${Conffiles}' "$pkg" 2>/dev/null)
    echo "$c" | grep -q " $avail/auth_memsession.load " &&
        echo "$c" | grep -q " $avail/auth_memsession.conf "
}
unit_not_enabled() {
    ! find /etc/systemd/system -name memsession-memcached.service 2>/dev/null | grep -q .
}
# What the test must leave as it found: Apache's files and module state, systemd's enablement
# state, this package's status.
snapshot() {
    find /etc/apache2 /var/lib/apache2 /etc/systemd/system \
        /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
        -printf '%p %y %m %u:%g\n' 2>/dev/null | sort
    a2query -m 2>/dev/null | sort
    status
}
apache_lists_module() { apache2ctl -M 2>&1 | grep -q 'auth_memsession_module'; }
apache_config_ok() { run apache2ctl -t; }

if [ "$(id -u)" != 0 ]; then
    # CI runs as root: there, and wherever CI=true, this is a failure, never a skip.
    if [ "${CI:-}" = true ]; then
        echo "package-test must run as root (it installs the package)" >&2
        exit 1
    fi
    echo "package-test: SKIPPED, not root (it installs the package on this machine)" >&2
    exit 0
fi
[ -f "$deb" ] || { echo "no package at $deb (make deb)" >&2; exit 1; }
case "$deb" in /*) ;; *) deb=$PWD/$deb ;; esac
for tool in apt-get dpkg-query a2enmod a2dismod a2query apache2ctl lintian sha256sum; do
    command -v "$tool" >/dev/null || { echo "package-test needs $tool (make deps)" >&2; exit 1; }
done
# A leftover of an interrupted run is ours to remove; anything else here is an administrator's.
if [ -f "$policy" ] && grep -qxF "$policy_mark" "$policy"; then
    rm -f "$policy"
fi
if ! is_status not-installed; then
    echo "$pkg is already on this machine ($(status)): this test would purge it, with its" >&2
    echo "configuration and secret. Purge it yourself first: apt-get purge $pkg" >&2
    exit 1
fi
if ! absent "$secret"; then
    echo "$secret exists: this test would delete it (purge). Move it away first." >&2
    exit 1
fi

before=$(mktemp)
after=$(mktemp)
dirs_before=$(mktemp)
snapshot > "$before"
# a2enmod and a2dismod keep their state in directories under /var/lib/apache2 they make on
# first use; those the test made are removed with the state they held.
find /var/lib/apache2 -type d 2>/dev/null | sort > "$dirs_before"
had_run_dir=no
[ -d /run/memsession ] && had_run_dir=yes
wrote_policy=no
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n%s\n# Maintainer scripts may not start, stop or restart services meanwhile.\nexit 101\n' \
        "$policy_mark" > "$policy"
    chmod 0755 "$policy"
    wrote_policy=yes
fi

interrupted=no
cleanup() {
    trap - EXIT INT TERM HUP
    if ! is_status not-installed; then
        apt_get purge "$pkg" >/dev/null 2>&1 || dpkg --purge "$pkg" >/dev/null 2>&1
    fi
    # The module's enablement state, should a step have stopped between a2enmod and purge.
    a2dismod -q -p -f auth_memsession >/dev/null 2>&1 || true
    rm -f "$secret"
    if [ "$had_run_dir" = no ]; then
        rmdir /run/memsession/ccache /run/memsession 2>/dev/null || true
    fi
    [ "$wrote_policy" = yes ] && rm -f "$policy"
    find /var/lib/apache2 -depth -type d -empty 2>/dev/null | while read -r dir; do
        grep -qxF "$dir" "$dirs_before" || rmdir "$dir"
    done
    snapshot > "$after"
    if diff -u "$before" "$after"; then
        echo "ok: the machine is as the test found it"
        passed=$((passed + 1))
    else
        echo "FAIL: the machine differs from before the test (diff above)"
        failed=$((failed + 1))
    fi
    rm -f "$before" "$after" "$dirs_before"
    echo "package-test: $passed passed, $failed failed"
    [ "$interrupted" = yes ] && { echo "package-test: interrupted" >&2; exit 130; }
    [ "$failed" -eq 0 ] && exit 0
    exit 1
}
trap cleanup EXIT
trap 'interrupted=yes; exit 130' INT TERM HUP

echo "== lintian $deb"
lintian_out=$(lintian --fail-on error,warning "$deb" 2>&1)
lintian_rc=$?
printf '%s\n' "$lintian_out" | grep -v 'running with root privileges' || true
check "lintian: no errors and no warnings" [ "$lintian_rc" -eq 0 ]

echo "== apt-get install ./$(basename "$deb")"
check "apt-get install of the .deb succeeds" run apt_get install "$deb"
check "the package is installed" is_status installed
check "module, a2enmod files, memsessionctl, unit, tmpfiles entry, docs, man page are there" present \
    /usr/lib/apache2/modules/mod_auth_memsession.so "$avail/auth_memsession.load" \
    "$avail/auth_memsession.conf" /usr/sbin/memsessionctl \
    /lib/systemd/system/memsession-memcached.service /usr/lib/tmpfiles.d/memsession.conf \
    "$docdir/README.md" "$docdir/directives.md" "$docdir/example-site.conf" "$docdir/copyright" \
    /usr/share/man/man8/memsessionctl.8.gz
check "the .load file loads the installed module" \
    grep -q '^LoadModule auth_memsession_module /usr/lib/apache2/modules/mod_auth_memsession.so$' \
    "$avail/auth_memsession.load"
check "the .conf names the secret the package made" \
    grep -q "^ *MemSessionSecretFile $secret\$" "$avail/auth_memsession.conf"
check "both mods-available files are conffiles" conffiles_listed
check "memsessionctl runs" run /usr/sbin/memsessionctl --help
check "installing enabled no module" module_is 1
check "installing enabled no memcached unit" unit_not_enabled
check "the secret exists: root:root, mode 0600, 32 bytes" stat_is "$secret" "root:root 600 32"
check "the secret is a regular file, not a link" regular_file "$secret"
check "no temporary secret file is left behind" absent "$secret".new.*
secret_sum=$(sha256sum < "$secret")

echo "== a2enmod auth_memsession"
check "a2enmod auth_memsession succeeds" run a2enmod -q auth_memsession
check "apache2ctl -M lists auth_memsession_module" apache_lists_module
check "apache2ctl -t passes with the module enabled" apache_config_ok

echo "== an edited conffile, then apt-get install --reinstall"
echo "# edited by package-test" >> "$avail/auth_memsession.conf"
check "reinstalling succeeds" run apt_get install --reinstall "$deb"
check "reinstalling kept the secret" same_file "$secret" "$secret_sum"
check "reinstalling kept the edited conffile" grep -q '^# edited by package-test$' "$avail/auth_memsession.conf"
check "the module is still enabled" module_is 0

echo "== apt-get remove"
check "apt-get remove succeeds" run apt_get remove "$pkg"
check "only the configuration is left" is_status config-files
check "the module and memsessionctl are gone" absent /usr/lib/apache2/modules/mod_auth_memsession.so /usr/sbin/memsessionctl
check "remove kept both conffiles" present "$avail/auth_memsession.load" "$avail/auth_memsession.conf"
check "remove kept the edit" grep -q '^# edited by package-test$' "$avail/auth_memsession.conf"
check "remove kept the secret, 0600" stat_is "$secret" "root:root 600 32"
check "remove kept the secret's content" same_file "$secret" "$secret_sum"
check "remove disabled the module (it would load a missing .so)" module_is 33
check "apache2ctl -t passes after remove" apache_config_ok

echo "== install again after remove"
check "installing again succeeds" run apt_get install "$deb"
check "the administrator's a2enmod is restored" module_is 0
check "the secret is the same one" same_file "$secret" "$secret_sum"
check "apache2ctl -M lists auth_memsession_module again" apache_lists_module

echo "== a2dismod, remove, install: the administrator's a2dismod is kept"
check "a2dismod succeeds" run a2dismod -q auth_memsession
check "remove succeeds" run apt_get remove "$pkg"
check "install succeeds" run apt_get install "$deb"
check "the module stays disabled" module_is 32

echo "== apt-get purge"
check "apt-get purge succeeds" run apt_get purge "$pkg"
check "the package is gone" is_status not-installed
check "purge removed the conffiles" absent "$avail/auth_memsession.load" "$avail/auth_memsession.conf"
check "purge removed the secret" absent "$secret"
check "purge forgot the module's state" module_is 1
check "nothing of the module is left in mods-enabled" absent /etc/apache2/mods-enabled/auth_memsession.load /etc/apache2/mods-enabled/auth_memsession.conf
check "apache2ctl -t passes after purge" apache_config_ok

echo "== a secret the administrator made is never replaced"
(umask 077 && head -c 48 /dev/urandom > "$secret" && chmod 0400 "$secret")
admin_sum=$(sha256sum < "$secret")
check "install with an existing secret succeeds" run apt_get install "$deb"
check "the secret is the administrator's, content and mode" stat_is "$secret" "root:root 400 48"
check "the secret's content is unchanged" same_file "$secret" "$admin_sum"
check "purge succeeds" run apt_get purge "$pkg"
check "purge removed the secret" absent "$secret"
# cleanup (the EXIT trap) compares the machine with the snapshot and prints the summary.
