#!/usr/bin/env bash
# Build the sandbox image without a container registry.
#
# For machines that reach Debian's package mirror and PyPI but no image registry:
#   1. base image: debootstrap a minimal Debian (python3, python3-venv) from the
#      mirror apt already uses here, and `docker import` it (cached: skipped when present);
#   2. wheels: `pip download` the pinned requirements on the host, for the base image's
#      Python version and glibc (cached: skipped while requirements.txt is unchanged);
#   3. `docker build` of sandbox_image/Dockerfile on that base with `pip --no-index` and
#      no network, tagged or-env-sandbox:<version> and or-env-sandbox:latest.
#
# Needs: root (debootstrap), a running Docker daemon, debootstrap, and pip on the host.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: build_offline.sh [options]

  --version V       image tag version (default: the version in pyproject.toml)
  --image NAME      image name (default: or-env-sandbox)
  --base-tag TAG    tag of the imported Debian base (default: or-env-base:bookworm)
  --suite NAME      Debian suite for the base (default: bookworm; its python3 must be >= 3.11)
  --mirror URL      Debian mirror (default: the one in /etc/apt/sources.list(.d) for the suite)
  --cache-dir DIR   wheel cache (default: ${XDG_CACHE_HOME:-~/.cache}/or-env/sandbox)
  --rebuild-base    debootstrap the base again even when the image exists
  --refresh-wheels  download the wheels again even when the cache matches
  -h, --help        this text

env: OR_ENV_DEBIAN_MIRROR (same as --mirror), PIP (host pip command, default "python3 -m pip")
EOF
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

image="or-env-sandbox"
version=""
suite="bookworm"
base_tag=""
mirror="${OR_ENV_DEBIAN_MIRROR:-}"
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/or-env/sandbox"
rebuild_base=0
refresh_wheels=0

while [ $# -gt 0 ]; do
    case "$1" in
        --version) version="$2"; shift 2 ;;
        --image) image="$2"; shift 2 ;;
        --base-tag) base_tag="$2"; shift 2 ;;
        --suite) suite="$2"; shift 2 ;;
        --mirror) mirror="$2"; shift 2 ;;
        --cache-dir) cache_dir="$2"; shift 2 ;;
        --rebuild-base) rebuild_base=1; shift ;;
        --refresh-wheels) refresh_wheels=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build_offline: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
base_tag="${base_tag:-or-env-base:$suite}"

say() { echo "build_offline: $*" >&2; }
die() { say "error: $*"; exit 1; }

if [ -z "$version" ]; then
    version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/pyproject.toml" | head -n 1)"
    [ -n "$version" ] || die "no version found in $root/pyproject.toml; pass --version"
fi

docker info >/dev/null 2>&1 \
    || die "the Docker daemon does not answer (docker info failed): start it, or run .ci/docker_setup.sh as root"
[ -f "$root/or_env/sandbox/worker.py" ] \
    || die "or_env/sandbox/worker.py is missing: run this script from a full source checkout"

# Print the archive URI that apt uses for exactly suite $1 (one-line .list and deb822
# .sources files), so the base comes from the same mirror as the host's packages.
apt_mirror_for() {
    local want="$1" f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # deb [options] URI SUITE COMPONENTS...
        awk -v want="$want" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == want) { print $i; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # Stanzas separated by blank lines; print the first URI of a deb stanza with the suite.
        awk -v want="$want" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " want " "))
                    { split(uris, u, " "); print u[1]; found = 1 }
                types = uris = suites = ""; enabled = "yes"
            }
            BEGIN { enabled = "yes" }
            /^[ \t]*$/ { flush(); if (found) exit; next }
            /^#/ { next }
            tolower($1) == "types:" { $1 = ""; types = $0 }
            tolower($1) == "uris:" { $1 = ""; uris = $0 }
            tolower($1) == "suites:" { $1 = ""; suites = $0 }
            tolower($1) == "enabled:" { enabled = tolower($2) }
            END { if (!found) flush() }' "$f"
    done
}

total_start=$SECONDS

# --- 1. base image ----------------------------------------------------------------------
if [ "$rebuild_base" -eq 0 ] && docker image inspect "$base_tag" >/dev/null 2>&1; then
    say "base image $base_tag exists (pass --rebuild-base to make it again)"
else
    step_start=$SECONDS
    [ "$(id -u)" -eq 0 ] || die "debootstrap needs root: run as root, or make $base_tag on a machine where you are"
    command -v debootstrap >/dev/null 2>&1 \
        || die "debootstrap is not installed: apt-get install debootstrap"
    if [ -z "$mirror" ]; then
        mirror="$(apt_mirror_for "$suite" | head -n 1)"
        [ -n "$mirror" ] || die "no apt source for suite '$suite' in /etc/apt/sources.list(.d): pass --mirror URL"
    fi
    security="$(apt_mirror_for "$suite-security" | head -n 1)"
    rootfs="$(mktemp -d /tmp/or-env-rootfs.XXXXXX)"
    trap 'rm -rf "$rootfs"' EXIT
    say "debootstrap $suite from $mirror into $rootfs"
    # libgomp1: no pinned wheel links it today, but OpenMP builds of solvers expect it.
    packages="python3,python3-venv,libgomp1,passwd"
    # apt in the chroot needs CA certificates only to fetch updates over https.
    case "$mirror $security" in *https://*) packages="$packages,ca-certificates" ;; esac
    debootstrap --variant=minbase --include="$packages" \
        "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
        || { tail -n 30 "$rootfs.log" >&2; die "debootstrap failed (log above, full log: $rootfs.log)"; }
    rm -f "$rootfs.log"

    # Security updates, when the host has a security source for this suite.
    {
        echo "deb $mirror $suite main"
        echo "deb $mirror $suite-updates main"
        [ -n "$security" ] && echo "deb $security $suite-security main"
    } >"$rootfs/etc/apt/sources.list"
    cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
    say "applying $suite updates in the base"
    chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
        'apt-get update -q && apt-get upgrade -y -q' >"$rootfs.log" 2>&1 \
        || { tail -n 30 "$rootfs.log" >&2; die "apt-get upgrade in the base failed (log above)"; }
    rm -f "$rootfs.log"

    # Trim what a headless solver image never reads.
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old \
        "$rootfs"/etc/resolv.conf
    : >"$rootfs/etc/resolv.conf"

    say "importing the root file system as $base_tag"
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["python3"]' \
        - "$base_tag" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
    say "base image done in $((SECONDS - step_start)) s"
fi

# --- 2. wheels --------------------------------------------------------------------------
step_start=$SECONDS
# The wheels must match the image's interpreter and glibc, not the host's.
read -r py_tag glibc arch < <(docker run --rm --network none --entrypoint python3 "$base_tag" -c \
    "import os, platform, sys; print(f'{sys.version_info[0]}{sys.version_info[1]}', os.confstr('CS_GNU_LIBC_VERSION').split()[1], platform.machine())")
glibc_minor="${glibc#2.}"
platforms=(--platform "manylinux2014_$arch")
for minor in $(seq 17 "$glibc_minor"); do
    platforms+=(--platform "manylinux_2_${minor}_$arch")
done
wheels="$cache_dir/wheels/cp$py_tag-manylinux_2_${glibc_minor}_$arch"
stamp_want="$(sha256sum <"$here/requirements.txt" | cut -d' ' -f1) cp$py_tag glibc$glibc $arch"
if [ "$refresh_wheels" -eq 0 ] && [ "$(cat "$wheels/.stamp" 2>/dev/null)" = "$stamp_want" ]; then
    say "wheels for cp$py_tag/glibc $glibc/$arch are cached in $wheels"
else
    read -r -a pip_cmd <<<"${PIP:-python3 -m pip}"
    "${pip_cmd[@]}" --version >/dev/null 2>&1 \
        || die "no pip on the host (tried: ${pip_cmd[*]}): install python3-pip or set PIP"
    rm -rf "$wheels"
    mkdir -p "$wheels"
    say "downloading wheels for cp$py_tag/glibc $glibc/$arch into $wheels"
    "${pip_cmd[@]}" download --quiet --only-binary=:all: --no-deps \
        --python-version "$py_tag" --implementation cp --abi "cp$py_tag" "${platforms[@]}" \
        -d "$wheels" -r "$here/requirements.txt" \
        || die "pip download failed: is PyPI reachable, and does every pin in requirements.txt have a wheel for cp$py_tag $arch?"
    echo "$stamp_want" >"$wheels/.stamp"
    say "wheels done in $((SECONDS - step_start)) s ($(du -sh "$wheels" | cut -f1))"
fi

# --- 3. image ---------------------------------------------------------------------------
step_start=$SECONDS
# A context with the repository's layout, holding only what the Dockerfile copies, so
# the wheels never enter the source tree.
ctx="$(mktemp -d /tmp/or-env-context.XXXXXX)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/sandbox_image" "$ctx/or_env/sandbox"
cp "$here/Dockerfile" "$here/requirements.txt" "$ctx/sandbox_image/"
cp "$root/or_env/sandbox/worker.py" "$root/or_env/sandbox/confine.py" "$ctx/or_env/sandbox/"
mkdir -p "$ctx/sandbox_image/wheels"
# Hard links when the cache is on the same file system, copies otherwise.
cp -l "$wheels"/*.whl "$ctx/sandbox_image/wheels/" 2>/dev/null \
    || cp "$wheels"/*.whl "$ctx/sandbox_image/wheels/"

say "building $image:$version on $base_tag (no network)"
docker build --network none --force-rm \
    --build-arg "BASE_IMAGE=$base_tag" \
    --build-arg "PIP_ARGS=--no-index --find-links /build" \
    --build-arg "OR_ENV_VERSION=$version" \
    -t "$image:$version" -t "$image:latest" \
    -f "$ctx/sandbox_image/Dockerfile" "$ctx"
rm -rf "$ctx"
trap - EXIT

size="$(docker image inspect --format '{{.Size}}' "$image:$version")"
say "image $image:$version built in $((SECONDS - step_start)) s; size $((size / 1000000)) MB;" \
    "total $((SECONDS - total_start)) s"
