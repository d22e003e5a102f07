#!/usr/bin/env bash
# Certificates for the Docker engine's TLS listener (infra/k8s/base/engine.yaml) and for the
# servers that use it: a CA of its own, a server certificate for the engine's names, a client
# certificate for the servers. dockerd is started with --tlsverify: only holders of the client
# certificate reach the engine (root on it).
#
#   infra/k8s/engine-certs.sh <out-dir> [extra subjectAltName entries, e.g. IP:127.0.0.1]
#
# writes <out-dir>/server/{ca,cert,key}.pem (dockerd --tlscacert/--tlscert/--tlskey) and
# <out-dir>/client/{ca,cert,key}.pem (DOCKER_CERT_PATH). Then, in the namespace:
#   kubectl -n vaporform create secret generic vaporform-engine-server --from-file=<out-dir>/server
#   kubectl -n vaporform create secret generic vaporform-engine-client --from-file=<out-dir>/client
set -euo pipefail
out=${1:?usage: engine-certs.sh <out-dir> [subjectAltName...]}
shift
days=825
names="DNS:vaporform-engine-0.vaporform-engine,DNS:vaporform-engine"
for extra in "$@"; do names="$names,$extra"; done

mkdir -p "$out/server" "$out/client"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 077

openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days "$days" -subj '/CN=vaporform engine CA' \
  -keyout "$work/ca-key.pem" -out "$work/ca.pem" 2>/dev/null

sign() { # <name> <subject> <extensions>
  openssl req -newkey rsa:3072 -nodes -sha256 -subj "$2" \
    -keyout "$out/$1/key.pem" -out "$work/$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$work/$1.ext"
  openssl x509 -req -sha256 -days "$days" -in "$work/$1.csr" -CA "$work/ca.pem" \
    -CAkey "$work/ca-key.pem" -CAcreateserial -extfile "$work/$1.ext" \
    -out "$out/$1/cert.pem" 2>/dev/null
  cp "$work/ca.pem" "$out/$1/ca.pem"
}
sign server '/CN=vaporform-engine' \
  "subjectAltName=$names
extendedKeyUsage=serverAuth
keyUsage=digitalSignature,keyEncipherment"
sign client '/CN=vaporform-server' \
  "extendedKeyUsage=clientAuth
keyUsage=digitalSignature,keyEncipherment"
# The CA's key is not kept: new certificates mean a new CA (run this again, replace both Secrets).
echo "engine certificates written to $out (server/, client/)"
