#!/bin/sh
# Writes a throwaway PKI for the TLS tests into DIR: a CA (ca.pem), a memcached server
# certificate for 127.0.0.1 and localhost (server.pem, server.key), a client certificate
# (client.pem, client.key), a server certificate for another name only (elsewhere.pem,
# elsewhere.key) and an unrelated CA (other-ca.pem) that signed nothing here.
# Keys are mode 0600. Usage: make-certs.sh DIR
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
umask 077
days=2
quiet() { "$@" 2>/dev/null || { echo "make-certs.sh: failed: $*" >&2; exit 1; }; }
ca() { # name
    quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
        -subj "/CN=memsession test $1" -keyout "$1.key" -out "$1.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
}
leaf() { # name extensions
    quiet openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=memsession test $1" -keyout "$1.key" -out "$1.csr"
    printf '%s\n' "$2" > "$1.ext"
    quiet openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days $days -extfile "$1.ext" -out "$1.pem"
    rm -f "$1.csr" "$1.ext"
}
ca ca
ca other-ca
leaf server "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
leaf elsewhere "subjectAltName=DNS:elsewhere.example
extendedKeyUsage=serverAuth"
leaf client "extendedKeyUsage=clientAuth"
chmod 0644 ca.pem other-ca.pem server.pem elsewhere.pem client.pem
