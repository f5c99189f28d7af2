#!/usr/bin/env bash
# Makes a development CA and a localhost server certificate signed by it, with openssl.
#
#   config/certs/make-dev-certs.sh [--force] [DIR]
#
# Writes, in DIR (default: the folder this script is in, whatever the current directory):
#   dev-ca.pem          the CA certificate; clients trust it (curl --cacert dev-ca.pem)
#   dev-ca-key.pem      the CA private key
#   gateway.pem         the server certificate for localhost, 127.0.0.1 and ::1, then the CA
#   gateway-key.pem     the server private key
#
# The gateway makes the same kind of files itself at first start when both gateway.pem and
# gateway-key.pem are missing; this script is for when you want them ahead of time, want the
# CA key, or want to see exactly how they are made. Development only: never in production.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: make-dev-certs.sh [--force] [DIR]

Makes a development CA (dev-ca.pem, dev-ca-key.pem) and a server certificate for
localhost, 127.0.0.1 and ::1 signed by it (gateway.pem = leaf + CA, gateway-key.pem),
all EC P-256, in DIR (default: the folder this script is in).

  --force     overwrite files that already exist
  -h, --help  show this help
EOF
}

force=false
out_dir=""
while (($# > 0)); do
    case "$1" in
        --force) force=true ;;
        -h | --help) usage; exit 0 ;;
        --) shift; break ;;
        -*) echo "make-dev-certs.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
        *)
            if [[ -n "$out_dir" ]]; then
                echo "make-dev-certs.sh: only one output directory, got '$out_dir' and '$1'" >&2
                exit 2
            fi
            out_dir="$1"
            ;;
    esac
    shift
done
if (($# > 0)); then
    if [[ -n "$out_dir" || $# -gt 1 ]]; then
        echo "make-dev-certs.sh: only one output directory" >&2
        exit 2
    fi
    out_dir="$1"
fi

# Paths are relative to this script's folder, not the caller's, so `make-dev-certs.sh` gives
# the same result from the repository root, from config/certs or from anywhere else.
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out_dir="${out_dir:-$script_dir}"

if ! command -v openssl >/dev/null 2>&1; then
    echo "make-dev-certs.sh: openssl is not installed (or not on PATH)" >&2
    exit 1
fi

mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"

files=(dev-ca.pem dev-ca-key.pem gateway.pem gateway-key.pem)
existing=()
for file in "${files[@]}"; do
    if [[ -e "$out_dir/$file" ]]; then existing+=("$out_dir/$file"); fi
done
if ((${#existing[@]} > 0)) && [[ "$force" != true ]]; then
    echo "make-dev-certs.sh: refusing to overwrite existing files (use --force to replace them):" >&2
    printf '  %s\n' "${existing[@]}" >&2
    exit 1
fi

# Everything is made in a scratch folder beside the output and moved in only when all four
# files exist, so a failure halfway never leaves a key that does not match its certificate.
work="$(mktemp -d "$out_dir/.make-dev-certs.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Private keys must never be readable by others, even for the moment before a chmod.
umask 077

# A config file of our own, rather than -addext: the extensions then do not depend on the
# system's openssl.cnf defaults, and the same file works with OpenSSL 1.1, 3.x and LibreSSL.
cat >"$work/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no

[dn]
CN = unused

[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF

# ecparam rather than genpkey, which LibreSSL (macOS's openssl) handles differently; the key
# is then stored as PKCS#8, the same format the gateway writes.
new_key() {
    openssl ecparam -name prime256v1 -genkey -noout -out "$1.sec1"
    openssl pkcs8 -topk8 -nocrypt -in "$1.sec1" -out "$1"
    rm -f "$1.sec1"
}

# Random serials: two runs must never issue two different certificates with the same issuer
# and serial, which browsers reject.
serial() {
    echo "0x$(openssl rand -hex 16)"
}

echo "Making a development CA (EC P-256) ..."
new_key "$work/dev-ca-key.pem"
openssl req -new -x509 -config "$work/openssl.cnf" -extensions ca \
    -key "$work/dev-ca-key.pem" -sha256 -days 1825 -set_serial "$(serial)" \
    -subj "/O=Portico development/CN=Portico development CA" \
    -out "$work/dev-ca.pem"

echo "Making a server certificate for localhost, 127.0.0.1 and ::1 (EC P-256) ..."
new_key "$work/gateway-key.pem"
openssl req -new -config "$work/openssl.cnf" \
    -key "$work/gateway-key.pem" -sha256 \
    -subj "/O=Portico development/CN=localhost" \
    -out "$work/gateway.csr"
# 365 days: Apple platforms refuse server certificates valid for longer than 825 days, and a
# year is short enough that an old development certificate does not linger.
openssl x509 -req -in "$work/gateway.csr" \
    -CA "$work/dev-ca.pem" -CAkey "$work/dev-ca-key.pem" -set_serial "$(serial)" \
    -sha256 -days 365 -extfile "$work/openssl.cnf" -extensions server \
    -out "$work/gateway-leaf.pem" 2>/dev/null

# The chain the listener sends: the leaf first, then the CA that signed it.
cat "$work/gateway-leaf.pem" "$work/dev-ca.pem" >"$work/gateway.pem"

openssl verify -CAfile "$work/dev-ca.pem" -purpose sslserver "$work/gateway-leaf.pem" >/dev/null

chmod 600 "$work/dev-ca-key.pem" "$work/gateway-key.pem"
chmod 644 "$work/dev-ca.pem" "$work/gateway.pem"
for file in "${files[@]}"; do
    mv -f "$work/$file" "$out_dir/$file"
done

cat <<EOF
Wrote:
  $out_dir/dev-ca.pem
  $out_dir/dev-ca-key.pem
  $out_dir/gateway.pem
  $out_dir/gateway-key.pem
Trust the CA in a client, for example:
  curl --cacert $out_dir/dev-ca.pem https://localhost:8443/ping
Development only: never use these files in production.
EOF
