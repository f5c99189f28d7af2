#!/usr/bin/env bash
# Checks that a gateway answers: GET /ping on a listener and GET /ready on the admin API.
#
#   Gateway/scripts/smoke.sh ADDRESS [--admin ADMIN_ADDRESS] [--cacert FILE]
#
#   ADDRESS   a listener: host:port (plain HTTP) or a URL such as https://localhost:8443
#   --admin   the admin API, default 127.0.0.1:9901 (or $PORTICO_ADMIN)
#   --cacert  CA to trust for an https ADDRESS, such as config/certs/dev-ca.pem
#
# Expects the /ping route of the shipped configs (200, body "pong"). Prints one line per
# check; exits 0 when all pass, 1 when one fails.
set -euo pipefail

usage() {
    sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

address=""
admin="${PORTICO_ADMIN:-127.0.0.1:9901}"
curl_tls=()
while (($# > 0)); do
    case "$1" in
        --admin) admin="${2:?--admin needs an address}"; shift ;;
        --admin=*) admin="${1#*=}" ;;
        --cacert) curl_tls=(--cacert "${2:?--cacert needs a file}"); shift ;;
        --cacert=*) curl_tls=(--cacert "${1#*=}") ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "smoke.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
        *)
            if [[ -n "$address" ]]; then
                echo "smoke.sh: one ADDRESS only" >&2
                exit 2
            fi
            address="$1"
            ;;
    esac
    shift
done
if [[ -z "$address" ]]; then
    usage >&2
    exit 2
fi
if ! command -v curl >/dev/null 2>&1; then
    echo "smoke.sh: curl is not installed" >&2
    exit 2
fi

as_url() {
    local value="${1%/}"
    [[ "$value" == http://* || "$value" == https://* ]] || value="http://$value"
    printf '%s' "$value"
}
base="$(as_url "$address")"
admin="$(as_url "$admin")"

failures=0
body="$(mktemp)"
errors="$(mktemp)"
trap 'rm -f "$body" "$errors"' EXIT

# check NAME URL EXPECTED_BODY_PREFIX [curl options...]
check() {
    local name="$1" url="$2" expected="$3"
    shift 3
    local status
    if ! status="$(curl --silent --show-error --max-time 5 "$@" \
            --output "$body" --write-out '%{http_code}' "$url" 2>"$errors")"; then
        printf 'FAIL  %-6s %s: %s\n' "$name" "$url" "$(head -n 1 "$errors")"
        failures=$((failures + 1))
        return
    fi
    local text
    text="$(head -c 200 "$body" | tr -d '\r' | head -n 1)"
    if [[ "$status" == 200 && "$text" == "$expected"* ]]; then
        printf 'ok    %-6s %s -> %s %s\n' "$name" "$url" "$status" "$text"
    else
        printf 'FAIL  %-6s %s -> %s %s (expected 200 %s)\n' "$name" "$url" "$status" "$text" "$expected"
        failures=$((failures + 1))
    fi
}

check ping "$base/ping" pong ${curl_tls[@]+"${curl_tls[@]}"}
check ready "$admin/ready" ready

if ((failures > 0)); then
    echo "smoke.sh: $failures check(s) failed" >&2
    exit 1
fi
