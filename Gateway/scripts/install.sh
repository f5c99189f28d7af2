#!/usr/bin/env bash
# Builds Portico and installs it as a systemd service:
#
#   PREFIX/bin/portico                        the gateway (PREFIX defaults to /usr/local)
#   /etc/systemd/system/portico.service       the unit, from Gateway/systemd/portico.service
#   /etc/portico/gateway.yaml                 the config, from config/gateway.yaml (kept if present)
#   /etc/portico/certs/                       TLS files; the gateway makes development ones here
#   /srv/portico/Functions/                   functions, from Functions/
#
# Safe to run again: it replaces the binary and the unit, creates what is missing, and never
# overwrites an existing /etc/portico/gateway.yaml. See Gateway/systemd/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: sudo Gateway/scripts/install.sh [options]

Builds the release binary (swift build -c release --product portico) and installs the
binary, the systemd unit, the config and the functions. Needs root.

  --prefix DIR     install the binary as DIR/bin/portico (default: /usr/local)
  --no-build       install the existing .build/release/portico instead of building
                   (build first as yourself, so .build does not end up owned by root)
  --binary FILE    install FILE instead of building
  --destdir DIR    stage everything under DIR instead of / (for packaging); does not
                   need root, creates no user and does not call systemctl
  --dry-run        print what would be done, change nothing
  -h, --help       show this help
EOF
}

prefix=/usr/local
destdir=""
binary=""
build=true
dry_run=false
while (($# > 0)); do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a directory}"; shift ;;
        --prefix=*) prefix="${1#*=}" ;;
        --destdir) destdir="${2:?--destdir needs a directory}"; shift ;;
        --destdir=*) destdir="${1#*=}" ;;
        --binary) binary="${2:?--binary needs a file}"; build=false; shift ;;
        --binary=*) binary="${1#*=}"; build=false ;;
        --no-build) build=false ;;
        --dry-run) dry_run=true ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

# The prefix ends up inside the unit's ExecStart, where only a plain absolute path is safe.
if [[ "$prefix" != /* || "$prefix" =~ [^A-Za-z0-9._/-] ]]; then
    echo "install.sh: --prefix must be an absolute path of letters, digits, '.', '_', '-' and '/', got '$prefix'" >&2
    exit 2
fi
prefix="${prefix%/}"
if [[ -n "$destdir" ]]; then
    mkdir -p "$destdir"
    destdir="$(cd "$destdir" && pwd)"
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
user=portico
config_dir=/etc/portico
certs_dir=/etc/portico/certs
srv_dir=/srv/portico
unit_path=/etc/systemd/system/portico.service
bin_path="$prefix/bin/portico"

if [[ -z "$destdir" && "$dry_run" != true && "$(id -u)" -ne 0 ]]; then
    echo "install.sh: needs root to write $bin_path, $unit_path and $config_dir; run it with sudo" >&2
    echo "            (or use --destdir DIR to stage the files without root)" >&2
    exit 1
fi

# Prints each command before running it, so the output is a record of what changed.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if [[ "$dry_run" != true ]]; then
        "$@"
    fi
}

step() {
    printf '\n==> %s\n' "$*"
}

if [[ "$dry_run" == true ]]; then
    echo "Dry run: printing the commands that would change the system, running none of them."
fi

# --- 1. The binary --------------------------------------------------------------------------
if [[ "$build" == true ]]; then
    step "Building the release binary"
    if ! command -v swift >/dev/null 2>&1; then
        echo "install.sh: swift is not on PATH (under sudo, PATH is reset: build first as" >&2
        echo "            yourself with 'swift build -c release --product portico', then pass --no-build)" >&2
        exit 1
    fi
    run swift build --package-path "$repo" -c release --product portico
    # The worker supervisor, found beside the gateway's binary (see the README's "What
    # Portico promises about workers").
    run swift build --package-path "$repo" -c release --product portico-supervise
    binary="$(swift build --package-path "$repo" -c release --product portico --show-bin-path)/portico"
elif [[ -z "$binary" ]]; then
    binary="$repo/.build/release/portico"
fi
if [[ "$dry_run" != true && ! -x "$binary" ]]; then
    echo "install.sh: no executable at $binary; build it with 'swift build -c release --product portico'" >&2
    exit 1
fi

# --- 2. Check the config before touching anything ------------------------------------------
# The default config names its certificates relative to the repository root
# (config/certs/...); installed, they live in /etc/portico/certs, the folder the unit lets
# the gateway write to.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
sed -E 's#^([[:space:]]*(certificate|key):[[:space:]]*)config/certs/#\1'"$certs_dir"'/#' \
    "$repo/config/gateway.yaml" >"$scratch/gateway.yaml"
if grep -Eq '^[[:space:]]*(certificate|key):[[:space:]]*config/' "$scratch/gateway.yaml"; then
    echo "install.sh: could not rewrite the certificate paths in config/gateway.yaml" >&2
    exit 1
fi

installed_config="$destdir$config_dir/gateway.yaml"
step "Checking the config with the new binary"
if [[ -e "$installed_config" ]]; then
    echo "Keeping the existing $installed_config; checking that the new binary accepts it."
    config_to_check="$installed_config"
else
    config_to_check="$scratch/gateway.yaml"
fi
if [[ "$dry_run" == true && ! -x "$binary" ]]; then
    echo "(dry run: $binary does not exist yet, skipping the check)"
elif ! "$binary" check --config "$config_to_check"; then
    echo "install.sh: the new binary rejects $config_to_check; nothing was installed" >&2
    exit 1
fi

# --- 3. User and folders --------------------------------------------------------------------
step "User and folders"
if [[ -n "$destdir" ]]; then
    echo "Staging under $destdir: not creating the '$user' user; the package must create it"
    echo "and own $certs_dir and $srv_dir by it."
elif id -u "$user" >/dev/null 2>&1; then
    echo "User '$user' exists."
else
    nologin="$(command -v nologin || echo /usr/sbin/nologin)"
    run useradd --system --user-group --home-dir "$srv_dir" --no-create-home --shell "$nologin" "$user"
fi

# The config stays root's, so the gateway cannot rewrite its own config; the certificate
# folder and the working directory are the gateway's, matching ReadWritePaths in the unit.
run install -d -m 0755 "$destdir$prefix/bin" "$destdir$config_dir" "$destdir/etc/systemd/system"
if [[ -n "$destdir" ]]; then
    run install -d -m 0750 "$destdir$certs_dir"
    run install -d -m 0755 "$destdir$srv_dir" "$destdir$srv_dir/Functions"
else
    run install -d -m 0750 -o "$user" -g "$user" "$certs_dir"
    run install -d -m 0755 -o "$user" -g "$user" "$srv_dir"
    run install -d -m 0755 "$srv_dir/Functions"
fi

# --- 4. Files -------------------------------------------------------------------------------
step "Binary, unit and config"
run install -m 0755 "$binary" "$destdir$bin_path"
supervisor="$(dirname "$binary")/portico-supervise"
if [[ -x "$supervisor" || "$dry_run" == true ]]; then
    run install -m 0755 "$supervisor" "$destdir$(dirname "$bin_path")/portico-supervise"
else
    echo "install.sh: no portico-supervise beside $binary; the gateway will supervise workers with its own binary (slower starts)" >&2
fi

sed "s#/usr/local/bin/portico#$bin_path#g" "$repo/Gateway/systemd/portico.service" >"$scratch/portico.service"
run install -m 0644 "$scratch/portico.service" "$destdir$unit_path"

if [[ -e "$installed_config" ]]; then
    echo "Kept $installed_config (the default is config/gateway.yaml in the repository)."
else
    run install -m 0644 "$scratch/gateway.yaml" "$installed_config"
fi

if [[ -d "$repo/Functions" ]] && [[ -n "$(ls -A "$repo/Functions")" ]]; then
    step "Functions"
    # Copies over same-named files and leaves functions added on the server alone.
    run cp -R "$repo/Functions/." "$destdir$srv_dir/Functions/"
fi

# --- 5. systemd -----------------------------------------------------------------------------
if [[ -z "$destdir" && -d /run/systemd/system ]]; then
    step "systemd"
    run systemctl daemon-reload
fi

step "Done"
cat <<EOF
Installed $destdir$bin_path, $destdir$unit_path and $destdir$config_dir.
Next:
  sudo systemctl enable --now portico     # first install: start now and at boot
  sudo systemctl restart portico          # after an upgrade: drain, then start the new binary
  sudo systemctl reload portico           # after editing $config_dir/gateway.yaml (SIGHUP)
  journalctl -u portico -f                # logs
  Gateway/scripts/smoke.sh 127.0.0.1:8080 # check it answers
EOF
