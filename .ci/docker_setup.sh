#!/usr/bin/env bash
# Make a Docker daemon answer on this machine, idempotently.
#
# CI machines start without Docker. This installs Debian's docker.io when dockerd is
# missing, starts dockerd in the background when `docker info` fails, and waits for it.
# Running it again when the daemon already answers does nothing.
#
# Env:
#   DOCKERD_LOG          where dockerd writes its log (default /var/log/dockerd.log)
#   DOCKER_WAIT_SECONDS  how long to wait for the daemon (default 60)
set -euo pipefail

log="${DOCKERD_LOG:-/var/log/dockerd.log}"
wait_s="${DOCKER_WAIT_SECONDS:-60}"

say() { echo "docker_setup: $*" >&2; }

if docker info >/dev/null 2>&1; then
    say "daemon already answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        say "dockerd is not installed and this is not root: install docker.io (apt-get install docker.io) as root"
        exit 1
    fi
    say "installing docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends docker.io >/dev/null
fi

if [ "$(id -u)" -ne 0 ]; then
    say "the daemon does not answer and only root can start dockerd here: start it as root"
    exit 1
fi

# A socket or pid file left by a daemon that died blocks a new one from starting.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
    say "starting dockerd (log: $log)"
    mkdir -p "$(dirname "$log")"
    nohup dockerd >>"$log" 2>&1 &
fi

for _ in $(seq 1 "$wait_s"); do
    if docker info >/dev/null 2>&1; then
        say "daemon answers: $(docker info --format 'Docker {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}}' 2>/dev/null)"
        exit 0
    fi
    sleep 1
done

say "dockerd did not answer within ${wait_s}s; last lines of $log:"
tail -n 20 "$log" >&2 || true
exit 1
