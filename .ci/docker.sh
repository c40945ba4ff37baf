# Sourced by .ci/run (set -euo pipefail in effect): Docker engine, a local Debian base
# image and the local stand-in images, then the settings that point the tests at them.
# No registry is reachable, so nothing is pulled: the base comes from debootstrap and
# every image is built FROM it with --network host (apt reaches Debian's mirror).
# Idempotent: the base is built once per machine; image builds hit the layer cache.
# shellcheck shell=bash

_chaos_docker_t0=$(date +%s)

_chaos_docker_engine() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v dockerd >/dev/null 2>&1; then
        echo "docker.sh: dockerd not found: apt-get install docker.io" >&2
        return 1
    fi
    # A dockerd killed with the previous session leaves its pid file; a new one refuses
    # to start while the file names a live process, so only a dead owner's file goes.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        rm -f /var/run/docker.pid
    fi
    echo "docker.sh: starting dockerd (log: /tmp/pytest-chaos-dockerd.log)"
    nohup dockerd >/tmp/pytest-chaos-dockerd.log 2>&1 &
    local i
    for i in $(seq 1 60); do
        if [ -S /var/run/docker.sock ] && docker info >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    echo "docker.sh: dockerd did not answer within 60 s; last log lines:" >&2
    tail -n 20 /tmp/pytest-chaos-dockerd.log >&2 || true
    return 1
}

_chaos_docker_base() {
    local image=$1
    if docker image inspect "$image" >/dev/null 2>&1; then
        echo "docker.sh: base image $image exists (cached)"
        return 0
    fi
    local root
    root=$(mktemp -d /tmp/pytest-chaos-rootfs.XXXXXX)
    echo "docker.sh: debootstrap bookworm into $root"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
    # Lean image: apt lists and caches are fetched again by each Dockerfile anyway.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import - "$image" >/dev/null
    rm -rf "$root"
}

_chaos_docker_build() {
    local tag=$1 dockerfile=$2 context=$3
    echo "docker.sh: build $tag"
    local log
    log=$(mktemp)
    # The legacy builder prints a deprecation banner on stderr: show the log only on failure.
    if ! docker build --network host --build-arg "BASE=$CHAOS_DOCKER_BASE_IMAGE" \
        -f "$dockerfile" -t "$tag" "$context" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

_chaos_docker_engine
export CHAOS_DOCKER_BASE_IMAGE="${CHAOS_DOCKER_BASE_IMAGE:-pytest-chaos/debian-base:bookworm}"
_chaos_docker_base "$CHAOS_DOCKER_BASE_IMAGE"
_chaos_docker_build pytest-chaos/redis:local docker/redis/Dockerfile docker/redis
_chaos_docker_build pytest-chaos/postgres:local docker/postgres/Dockerfile docker/postgres
# The proxy's context is the package alone (a tar on stdin), not the repo with its .venv.
echo "docker.sh: build pytest-chaos/proxy:local"
tar -c --exclude=__pycache__ docker/proxy pytest_chaos \
    | docker build --network host --build-arg "BASE=$CHAOS_DOCKER_BASE_IMAGE" \
        -f docker/proxy/Dockerfile -t pytest-chaos/proxy:local - >/tmp/pytest-chaos-proxy-build.log 2>&1 \
    || { tail -n 40 /tmp/pytest-chaos-proxy-build.log >&2; false; }

# The tests read these settings; the test code names no image.
export PYTEST_CHAOS_REDIS_IMAGE=pytest-chaos/redis:local
export PYTEST_CHAOS_POSTGRES_IMAGE=pytest-chaos/postgres:local
export PYTEST_CHAOS_TOXIPROXY_IMAGE=pytest-chaos/proxy:local
# Ryuk's image cannot be pulled here; the plugin removes what it starts itself.
export TESTCONTAINERS_RYUK_DISABLED=true
# CI has Docker: a Docker test that cannot run must fail, not skip.
export PYTEST_CHAOS_REQUIRE_DOCKER=1

echo "docker.sh: ready in $(( $(date +%s) - _chaos_docker_t0 )) s"
unset -f _chaos_docker_engine _chaos_docker_base _chaos_docker_build
unset _chaos_docker_t0
