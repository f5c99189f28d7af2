#!/usr/bin/env bash
# Asks a running gateway to reload its config: POST /reload on the admin API.
#
#   Gateway/scripts/reload.sh [ADMIN_ADDRESS]      default 127.0.0.1:9901, or $PORTICO_ADMIN
#
# Prints the gateway's JSON answer ({"reloaded": ..., "generation": ..., "message": ...}).
# Exit status: 0 reloaded, 1 rejected (the config has errors; the running config keeps
# serving and the message says what is wrong), 2 the admin API could not be reached.
#
# The same as `systemctl reload portico` or `kill -HUP <pid>`, except that this one reports
# whether the new config was accepted.
set -euo pipefail

usage() {
    sed -n '2,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
esac
if (($# > 1)); then
    usage >&2
    exit 2
fi
admin="${1:-${PORTICO_ADMIN:-127.0.0.1:9901}}"
# Accept a bare host:port or a URL, so the address can be pasted from either form.
admin="${admin%/}"
[[ "$admin" == http://* || "$admin" == https://* ]] || admin="http://$admin"

if ! command -v curl >/dev/null 2>&1; then
    echo "reload.sh: curl is not installed" >&2
    exit 2
fi

body="$(mktemp)"
trap 'rm -f "$body"' EXIT
if ! status="$(curl --silent --show-error --max-time 30 --request POST \
        --output "$body" --write-out '%{http_code}' "$admin/reload")"; then
    echo "reload.sh: could not reach the admin API at $admin" >&2
    exit 2
fi
cat "$body"

case "$status" in
    200) exit 0 ;;
    400)
        echo "reload.sh: reload rejected; the gateway keeps its running config" >&2
        exit 1
        ;;
    *)
        echo "reload.sh: unexpected HTTP status $status from $admin/reload" >&2
        exit 2
        ;;
esac
