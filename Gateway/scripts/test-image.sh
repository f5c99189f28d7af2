#!/usr/bin/env bash
# Builds the container image from Gateway/Containerfile and runs it the three ways Gateway/
# documents, checking that every example function builds and answers.
#
#   Gateway/scripts/test-image.sh [--binary FILE]
#
#   --binary  the portico binary to put in the image; default .build/debug/portico of this
#             checkout (build it first with `swift build`)
#
# No registry is reachable here and no daemon runs, so:
#   - the base image (debian:bookworm-slim's stand-in) is a Debian bookworm root file system
#     made with `debootstrap --variant=minbase`, imported with `podman import`; it is cached in
#     Gateway/.work/ (delete the tar there to refresh it; a fresh clone makes it in 1-2 min);
#   - the Containerfile's `builder` stage (swift:6.3-bookworm and `swift package resolve` from
#     GitHub) is replaced with `buildah build --build-context builder=DIR`: DIR holds the
#     binary, the toolchain's backtracer and, for a debug binary, the Swift runtime libraries
#     it links, at the toolchain's own paths. Every other line of the Containerfile runs as
#     written, the runtime stage's `apt-get install` included.
# Then the image runs, with podman and no network (curl reaches it by entering its network
# namespace), three ways: as `podman run IMAGE` runs it; with a read-only root file system and
# a named volume at /srv/portico, as Gateway/README.md shows; and as Gateway/kubernetes/
# deployment.yaml says (see pod-to-podman.py): init container, read-only root, UID 10001,
# emptyDirs as host folders. Each run checks /ping, the three example functions, the image's
# HEALTHCHECK, and a clean exit 0 on SIGTERM.
#
# Needs root, buildah, podman, runc, debootstrap, python3 with PyYAML, curl and nsenter.
# Prints one line per check, then "test-image: PASS" or "test-image: FAIL: reason"; exits 1 on
# failure. Everything it starts (containers, images, volumes, folders) is removed on exit.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
binary="$repo/.build/debug/portico"
while (($# > 0)); do
    case "$1" in
        --binary) binary="${2:?--binary needs a file}"; shift ;;
        --binary=*) binary="${1#*=}" ;;
        -h | --help) sed -n '2,30s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "test-image.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done

started=$SECONDS
fail() {
    echo "test-image: FAIL: $*"
    exit 1
}
check() {
    echo "  ok  $*"
}

[[ "$(id -u)" == 0 ]] || fail "needs root (buildah, podman and debootstrap run as root here)"
for tool in buildah podman runc debootstrap python3 curl nsenter ldd; do
    command -v "$tool" >/dev/null || fail "needs '$tool' (apt-get install buildah podman runc debootstrap python3-yaml curl util-linux)"
done
python3 -c 'import yaml' 2>/dev/null || fail "needs PyYAML (apt-get install python3-yaml)"
[[ -x "$binary" ]] || fail "no binary at $binary (run swift build first, or pass --binary)"

work="$repo/Gateway/.work"
mkdir -p "$work"
run_id="$$-$RANDOM"
scratch="$(mktemp -d "$work/run-XXXXXX")"
base_image="localhost/portico-test-base:$run_id"
image="localhost/portico-test:$run_id"
containers=()
volumes_made=()

# This machine's limits: crun refuses its mixed cgroup v1/v2 layout, so runc with cgroupfs;
# and the container runtime cannot raise RLIMIT_NOFILE or RLIMIT_NPROC (no CAP_SYS_RESOURCE),
# so they are set to what the gateway needs, within the current hard limits.
podman_global=(--runtime runc --cgroup-manager cgroupfs)
nofile="$(ulimit -Hn)"; [[ "$nofile" == unlimited || "$nofile" -gt 65536 ]] && nofile=65536
# podman's stderr goes to a log, shown on failure: without systemd it complains on every
# start and stop that it cannot set up a timer for the HEALTHCHECK, which runs by hand below.
podman_log="$scratch/podman.log"
podman_run=(run --ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096 --network none
    --health-interval disable)

# The long steps (debootstrap, buildah) run in their own process group, in the background,
# so that a signal reaches the trap at once and the trap can stop the whole step.
#   run_step LOG COMMAND...   (the output goes to LOG)
step_group=""
run_step() {
    local log="$1"
    shift
    setsid "$@" >"$log" 2>&1 &
    step_group=$!
    local status=0
    wait "$step_group" || status=$?
    step_group=""
    return "$status"
}

cleanup() {
    local status=$?
    set +e
    if [[ -n "$step_group" ]]; then
        kill -TERM -- "-$step_group" 2>/dev/null
        wait "$step_group" 2>/dev/null
    fi
    for container in "${containers[@]}"; do
        podman "${podman_global[@]}" rm -f -t 0 "$container" >/dev/null 2>&1
    done
    for volume in "${volumes_made[@]}"; do
        podman volume rm -f "$volume" >/dev/null 2>&1
    done
    podman rmi -f "$image" "$base_image" >/dev/null 2>&1
    # debootstrap mounts /proc and /sys inside its target; an interrupted run leaves them.
    if [[ -d "$scratch" ]]; then
        findmnt -rn -o TARGET | grep -F "$scratch/" | sort -r | while read -r target; do
            umount -l "$target"
        done
        rm -rf "$scratch"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'echo "test-image: FAIL: interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# The base image.
rootfs_tar="$work/debian-bookworm-minbase.tar"
if [[ ! -s "$rootfs_tar" ]]; then
    echo "making the base root file system with debootstrap (cached in $rootfs_tar)"
    rootfs="$scratch/rootfs"
    run_step "$scratch/debootstrap.log" debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian \
        || { tail -20 "$scratch/debootstrap.log"; fail "debootstrap failed"; }
    # The apt sources of the official debian:bookworm-slim image, security updates included.
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -rf "$rootfs/var/cache/apt/archives"/*.deb "$rootfs/var/lib/apt/lists"/*
    tar -C "$rootfs" --numeric-owner -cf "$rootfs_tar.partial" .
    mv "$rootfs_tar.partial" "$rootfs_tar"
    rm -rf "$rootfs"
fi
podman import -q --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "$rootfs_tar" "$base_image" >/dev/null
check "base image from a debootstrap bookworm minbase ($((SECONDS - started)) s)"

# ---------------------------------------------------------------------------------------------
# The builder stage's output: /staging/usr/local/bin/portico and the backtracer, plus the
# Swift runtime libraries a debug binary links (a release build links them statically).
builder="$scratch/builder"
install -D -m 0755 "$binary" "$builder/staging/usr/local/bin/portico"
# The worker supervisor is built beside the gateway (`swift build` makes both).
supervisor="$(dirname "$binary")/portico-supervise"
[[ -x "$supervisor" ]] || fail "no portico-supervise beside $binary (swift build makes it)"
install -D -m 0755 "$supervisor" "$builder/staging/usr/local/bin/portico-supervise"
# The toolchain's usr folder: from where the debug binary finds libswiftCore.so
# (usr/lib/swift/linux), or else from the swift on PATH.
# ldd fails on a static binary: then there is nothing to copy.
linked="$(ldd "$binary" 2>/dev/null || true)"
swift_core="$(awk '$1 ~ /^libswiftCore\.so/ && $3 ~ /^\// { print $3 }' <<<"$linked")"
if [[ -n "$swift_core" ]]; then
    toolchain="$(cd "$(dirname "$(readlink -f "$swift_core")")/../../.." && pwd)"
else
    toolchain="$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")"
fi
install -D -m 0755 "$toolchain/libexec/swift/linux/swift-backtrace-static" \
    "$builder/staging/usr/local/libexec/portico/swift-backtrace-static"
if grep -q 'not found' <<<"$linked"; then
    fail "$binary has unresolved libraries: $(grep 'not found' <<<"$linked" | tr -s ' \n' ' ')"
fi
awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$linked" | while read -r library; do
    case "$library" in
        "$toolchain"/*) install -D -m 0644 "$library" "$builder/staging$library" ;;
    esac
done

echo "building the image with buildah (the Containerfile's runtime stage runs apt-get)"
if ! run_step "$scratch/build.log" buildah build --isolation chroot --pull=never --format docker \
    --build-context "builder=$builder" --build-arg "RUNTIME_IMAGE=$base_image" \
    -f "$repo/Gateway/Containerfile" -t "$image" "$repo"; then
    tail -30 "$scratch/build.log"
    fail "buildah build failed"
fi
check "buildah built the image from Gateway/Containerfile ($((SECONDS - started)) s)"

# ---------------------------------------------------------------------------------------------
# What the image says about itself.
image_user="$(podman image inspect -f '{{.Config.User}}' "$image")"
[[ "$image_user" == 10001:10001 ]] || fail "the image's user is '$image_user', expected 10001:10001"
workdir="$(podman image inspect -f '{{.Config.WorkingDir}}' "$image")"
[[ "$workdir" == /srv/portico ]] || fail "the image's working folder is '$workdir', expected /srv/portico"
check "image user 10001:10001, working folder /srv/portico"

# The commands the example functions, the HEALTHCHECK and the init container need, and the
# paths the manifests rely on; run as the image's user.
if ! podman "${podman_global[@]}" "${podman_run[@]}" --rm --entrypoint sh "$image" -c '
    set -e
    for tool in cc python3 sh curl cp; do command -v "$tool" >/dev/null || { echo "no $tool"; exit 1; }; done
    if ldd /usr/local/bin/portico | grep "not found"; then exit 1; fi
    test -x /usr/local/bin/portico-supervise
    test -f /usr/local/share/portico/Functions/native/worker.c
    test -d /srv/portico/Functions/native -a -w /srv/portico/Functions/native
    test ! -e /usr/local/share/portico/Functions/native/.portico-build
    test -w /etc/portico/certs
    test ! -w /etc/portico/gateway.yaml
    test -z "$(ls /etc/portico/certs | grep "\.pem$" || true)"
' >"$scratch/contents.log" 2>&1; then
    cat "$scratch/contents.log"
    fail "the image's contents are not what the Containerfile promises"
fi
check "cc, python3, curl in the image; functions writable by 10001 in /srv/portico; no keys"

# ---------------------------------------------------------------------------------------------
# Checks one running gateway container: listeners, the three example functions, the
# HEALTHCHECK, and a clean SIGTERM.
check_gateway() {
    local container="$1" label="$2"
    local pid
    pid="$(podman inspect -f '{{.State.Pid}}' "$container")"
    [[ "$pid" -gt 0 ]] || fail "$label: the container is not running"
    in_pod() { nsenter --target "$pid" --net -- curl --silent --show-error --max-time 10 "$@"; }

    local deadline=$((SECONDS + 30))
    until [[ "$(in_pod -o /dev/null -w '%{http_code}' http://127.0.0.1:9901/ready 2>/dev/null)" == 200 ]]; do
        if ((SECONDS > deadline)) || [[ "$(podman inspect -f '{{.State.Running}}' "$container")" != true ]]; then
            podman logs "$container" 2>&1 | tail -20
            fail "$label: the gateway did not become ready within 30 s"
        fi
        sleep 0.2
    done
    local uid
    uid="$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")"
    [[ "$uid" == 10001 ]] || fail "$label: the gateway runs as UID $uid, expected 10001"
    [[ "$(in_pod http://127.0.0.1:8080/ping)" == pong ]] || fail "$label: GET /ping did not answer pong"

    # A function answers once its build and its first worker are done; poll until then.
    expect() {
        local name="$1" want="$2"; shift 2
        local deadline=$((SECONDS + 60)) body=""
        while true; do
            body="$(in_pod "$@" 2>/dev/null || true)"
            [[ "$body" == *"$want"* ]] && break
            if ((SECONDS > deadline)); then
                podman logs "$container" 2>&1 | grep -v '"status"' | tail -20
                in_pod http://127.0.0.1:9901/functions || true
                fail "$label: $name did not answer '$want' within 60 s (last answer: '$body')"
            fi
            sleep 0.3
        done
    }
    expect "Functions/hello (python3)" "you asked for /" http://127.0.0.1:8080/function/hello/
    expect "Functions/native (built with cc)" "Hello from a native worker" http://127.0.0.1:8080/function/native/
    expect "Functions/echo (sh, exec mode)" $'POST /\nsome text' -d 'some text' http://127.0.0.1:8080/function/echo/
    check "$label: UID 10001, /ping, hello, native (built in the container), echo"
    # The workers run under the supervisor the image ships (not the gateway's own fallback).
    local supervised=false child
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        [[ "$(readlink "/proc/$child/exe" 2>/dev/null)" == /usr/local/bin/portico-supervise ]] && supervised=true
    done
    [[ "$supervised" == true ]] || fail "$label: no worker runs under /usr/local/bin/portico-supervise"
    check "$label: workers run under /usr/local/bin/portico-supervise"

    local healthcheck
    healthcheck="$(podman image inspect -f '{{json .Config.Healthcheck.Test}}' "$image")"
    [[ "$healthcheck" == *healthz* ]] || fail "the image has no HEALTHCHECK (got $healthcheck)"
    # Runs the image's HEALTHCHECK command once (the interval is disabled: podman would run it
    # from a systemd timer, and there is no systemd here).
    podman "${podman_global[@]}" healthcheck run "$container" >/dev/null || fail "$label: the HEALTHCHECK failed"
    check "$label: the image's HEALTHCHECK command passes"
}

stop_gateway() {
    local container="$1" label="$2"
    podman "${podman_global[@]}" stop -t 40 "$container" >/dev/null 2>>"$podman_log"
    local code
    code="$(podman inspect -f '{{.State.ExitCode}}' "$container")"
    [[ "$code" == 0 ]] || { podman logs "$container" 2>&1 | tail -20; fail "$label: exit code $code after SIGTERM, expected 0"; }
    check "$label: exit 0 on SIGTERM"
}

# 1. As `podman run IMAGE` runs it: the image's entrypoint, user and writable folders.
plain="portico-test-plain-$run_id"
containers+=("$plain")
podman "${podman_global[@]}" "${podman_run[@]}" -d --name "$plain" "$image" >/dev/null 2>>"$podman_log" \
    || { cat "$podman_log"; fail "podman run failed"; }
check_gateway "$plain" "podman run"
stop_gateway "$plain" "podman run"

# 2. With a read-only root, as Gateway/README.md shows: named volumes at /srv/portico and at
# /etc/portico/certs (where the gateway makes its development certificate), which podman and
# Docker fill from the image's folder, owner included, when the volume is new; a tmpfs at /tmp.
# (A tmpfs at /etc/portico/certs would not do: podman copies the folder's owner but not its
# owner's access.) --read-only-tmpfs=false: Docker's --read-only adds no /tmp, podman's would.
read_only="portico-test-read-only-$run_id"
work_volume="portico-test-work-$run_id"
certs_volume="portico-test-certs-$run_id"
containers+=("$read_only")
volumes_made+=("$work_volume" "$certs_volume")
podman "${podman_global[@]}" "${podman_run[@]}" -d --name "$read_only" --read-only --read-only-tmpfs=false \
    --tmpfs /tmp -v "$certs_volume:/etc/portico/certs" -v "$work_volume:/srv/portico" "$image" \
    >/dev/null 2>>"$podman_log" \
    || { cat "$podman_log"; fail "podman run --read-only failed"; }
check_gateway "$read_only" "podman run --read-only"
stop_gateway "$read_only" "podman run --read-only"

# 3. As Gateway/kubernetes/deployment.yaml runs it.
mkdir -p "$scratch/volumes"
python3 "$repo/Gateway/scripts/pod-to-podman.py" --kubernetes "$repo/Gateway/kubernetes" \
    --container-config "$repo/Gateway/container-gateway.yaml" --image "$image" \
    --image-user "$image_user" --volumes "$scratch/volumes" --out "$scratch/pod.sh" \
    || fail "Gateway/kubernetes does not fit the image (see the line above)"
# What pod.sh sets (see pod-to-podman.py), plus init_0 ... init_N-1.
init_count=0 main=() volumes=() functions_folder=""
# shellcheck source=/dev/null
source "$scratch/pod.sh"
check "deployment.yaml: read-only root, UID 10001, functions folder $functions_folder on an emptyDir"
for ((index = 0; index < init_count; index++)); do
    declare -n init="init_$index"
    podman "${podman_global[@]}" "${podman_run[@]}" --rm "${init[@]}" 2>>"$podman_log" \
        || { cat "$podman_log"; fail "init container $index failed"; }
    unset -n init
done
pod="portico-test-pod-$run_id"
containers+=("$pod")
podman "${podman_global[@]}" "${podman_run[@]}" -d --name "$pod" "${main[@]}" >/dev/null 2>>"$podman_log" \
    || { cat "$podman_log"; fail "podman run failed"; }
[[ "$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$pod")" == true ]] || fail "the pod's root file system is not read-only"
check_gateway "$pod" "deployment"
for entry in "${volumes[@]}"; do
    IFS='|' read -r name folder limit <<<"$entry"
    used="$(du -sb "$folder" | cut -f1)"
    ((limit == 0 || used <= limit)) || fail "emptyDir $name holds $used bytes, over its sizeLimit of $limit"
done
check "deployment: every emptyDir within its sizeLimit"
stop_gateway "$pod" "deployment"

echo "test-image: PASS ($((SECONDS - started)) s)"
