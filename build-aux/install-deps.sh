#!/bin/sh
# Installs what building and testing need on Debian, when it is missing. Under CI=true a
# component that is still missing afterwards fails the run: tests never skip silently.
set -eu

packages="apache2 apache2-dev apache2-utils memcached libclang-dev clang curl"
# Kerberos: a throwaway MIT realm, mod_auth_gssapi at the login, and the two browsers the
# SPNEGO tests drive headless.
packages="$packages krb5-kdc krb5-admin-server krb5-user libapache2-mod-auth-gssapi"
# The module links libkrb5 (password logins through Kerberos); make bench's Negotiate load
# client (bench/negotiate_load.c) builds against MIT GSSAPI.
packages="$packages libkrb5-dev"
packages="$packages chromium firefox-esr"
# make deb / make package-test: Debian's own packaging tools (dpkg-buildpackage comes with
# debhelper's dpkg-dev; dh_apache2 with apache2-dev), build-essential, which dpkg-buildpackage
# requires of every build, and lintian, which the package must pass.
packages="$packages debhelper build-essential lintian"
# The shipped fail2ban filter (apache-conf/fail2ban/) is tested with fail2ban-regex.
packages="$packages fail2ban"
# Canonical names through mod_authnz_ldap (tests/integration/test_login_ldap.py): a throwaway
# OpenLDAP directory, filled with ldapadd.
packages="$packages slapd ldap-utils"
# memcached over TLS: tests/tls/make-certs.sh makes the test certificates.
packages="$packages openssl"
# command that proves each package is there
need() {
    case "$1" in
        apache2) test -x /usr/sbin/apache2 ;;
        apache2-dev) command -v apxs >/dev/null ;;
        apache2-utils) command -v htpasswd >/dev/null ;;
        memcached) command -v memcached >/dev/null ;;
        libclang-dev) ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 ;;
        clang) command -v clang >/dev/null ;;
        curl) command -v curl >/dev/null ;;
        krb5-kdc) test -x /usr/sbin/krb5kdc && test -x /usr/sbin/kdb5_util ;;
        krb5-admin-server) test -x /usr/sbin/kadmin.local ;;
        krb5-user) command -v kinit >/dev/null && command -v klist >/dev/null ;;
        libapache2-mod-auth-gssapi) test -f /usr/lib/apache2/modules/mod_auth_gssapi.so ;;
        libkrb5-dev) test -f /usr/include/krb5/krb5.h && test -f /usr/include/gssapi/gssapi_krb5.h && command -v krb5-config >/dev/null ;;
        chromium) command -v chromium >/dev/null ;;
        firefox-esr) command -v firefox-esr >/dev/null ;;
        debhelper) command -v dh >/dev/null && command -v dpkg-buildpackage >/dev/null ;;
        build-essential) dpkg-query -W -f '${Status}' build-essential 2>/dev/null | grep -q 'ok installed' ;;
        lintian) command -v lintian >/dev/null ;;
        fail2ban) command -v fail2ban-regex >/dev/null ;;
        slapd) test -x /usr/sbin/slapd && test -f /etc/ldap/schema/inetorgperson.schema ;;
        ldap-utils) command -v ldapadd >/dev/null && command -v ldapsearch >/dev/null ;;
        openssl) command -v openssl >/dev/null ;;
    esac
}

missing=""
for package in $packages; do
    need "$package" || missing="$missing $package"
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing:$missing"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    else
        echo "missing:$missing — install them (apt-get install$missing) or run as root" >&2
        exit 1
    fi
fi

for package in $packages; do
    need "$package" || { echo "still missing after install: $package" >&2; exit 1; }
done

if ! python3 -c 'import pytest' 2>/dev/null; then
    python3 -m pip install -q pytest
fi
python3 -c 'import pytest' || { echo "pytest is missing" >&2; exit 1; }
# The store-writer tests seal records (ChaCha20-Poly1305) as an attacker with memcached access.
if ! python3 -c 'import cryptography' 2>/dev/null; then
    python3 -m pip install -q cryptography
fi
python3 -c 'import cryptography' || { echo "python cryptography is missing" >&2; exit 1; }
command -v cargo >/dev/null || { echo "cargo (Rust toolchain) is missing" >&2; exit 1; }
