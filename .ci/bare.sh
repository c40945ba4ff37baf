#!/usr/bin/env bash
# CI leg: the README's two commands on a bare machine.
#
# Builds pytest-chaos/bare:bookworm (docker/bare/Dockerfile: the local Debian base image
# plus python3, python3-venv, python3-pip, make, git and ca-certificates; no Redis, no
# PostgreSQL, no Docker), clones this repository afresh at HEAD (committed files only:
# nothing untracked or uncommitted leaks in) and runs, in a container of that image, as
# root, on the host's network, with the clone as working directory:
#   1. make .venv/bin/.installed  the venv both commands create on first use (timed apart)
#   2. make chaos                 the main job; its pytest summary must show at least
#                                 $CHAOS_CI_BARE_MIN_PASSED passed, and no skipped,
#                                 failed or error
#   3. make test                  ruff, mypy and the test suite
# Both commands run even when the first fails; the leg fails if either does.
# The host's pip configuration files, the local paths they (and the PIP_* variables)
# name, and its CA certificates are mounted read-only, and the PIP_*, CA bundle and proxy
# variables are passed through, so pip reaches its index the way the host does. Nothing
# else of the host goes in.
#
# Run by .ci/run at its end, or alone from the repo root:  bash .ci/bare.sh
# Alone, it starts dockerd and builds the base image through .ci/docker.sh when either is
# missing (that needs the docker.io and debootstrap packages, which .ci/run installs).
# Settings:
#   CHAOS_CI_BARE=0            skip this leg (local use)
#   CHAOS_CI_BARE_KEEP=1       keep the clone (with its .venv) and print where it is
#   CHAOS_CI_BARE_TIMEOUT      seconds allowed per command (default 1200)
#   CHAOS_CI_BARE_MIN_PASSED   passed tests `make chaos` must show (default 14)
# Output: logs in .ci/work/bare/ (install.log, make-chaos.log, make-test.log) and the
# durations, exit codes and verdict in .ci/work/bare-timings.txt (sourceable key=value
# lines, for bench/RESULTS.md).
set -euo pipefail

if [ "${CHAOS_CI_BARE:-1}" = "0" ]; then
    echo "bare.sh: skipped (CHAOS_CI_BARE=0)"
    exit 0
fi

_bare_t0=$(date +%s)
cd "$(dirname "$0")/.."
REPO_ROOT=$(git rev-parse --show-toplevel)
cd "$REPO_ROOT"

BARE_IMAGE=pytest-chaos/bare:bookworm
BARE_WORKDIR=/root/pytest-chaos
BARE_TIMEOUT=${CHAOS_CI_BARE_TIMEOUT:-1200}
BARE_MIN_PASSED=${CHAOS_CI_BARE_MIN_PASSED:-14}
BARE_OUT=$REPO_ROOT/.ci/work/bare
BARE_TIMINGS=$REPO_ROOT/.ci/work/bare-timings.txt
mkdir -p "$BARE_OUT"
rm -f "$BARE_OUT"/*.log "$BARE_TIMINGS"

if ! command -v docker >/dev/null 2>&1; then
    echo "bare.sh: docker not found: run bash .ci/run, or apt-get install docker.io" >&2
    exit 1
fi

# --- Docker engine and the local base image (.ci/docker.sh owns both) ----------------
export CHAOS_DOCKER_BASE_IMAGE="${CHAOS_DOCKER_BASE_IMAGE:-pytest-chaos/debian-base:bookworm}"
setup_s=0
if ! docker info >/dev/null 2>&1 || ! docker image inspect "$CHAOS_DOCKER_BASE_IMAGE" >/dev/null 2>&1; then
    for tool in dockerd debootstrap; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "bare.sh: $tool not found: run bash .ci/run, or apt-get install docker.io debootstrap" >&2
            exit 1
        fi
    done
    echo "== bare: Docker engine and base image (.ci/docker.sh)"
    _bare_t=$(date +%s)
    # shellcheck source=.ci/docker.sh
    source .ci/docker.sh
    setup_s=$(($(date +%s) - _bare_t))
fi

# --- The bare image ---------------------------------------------------------------------
echo "== bare: build $BARE_IMAGE FROM $CHAOS_DOCKER_BASE_IMAGE"
_bare_t=$(date +%s)
if ! docker build --network host --build-arg "BASE=$CHAOS_DOCKER_BASE_IMAGE" \
    -f docker/bare/Dockerfile -t "$BARE_IMAGE" docker/bare >"$BARE_OUT/image-build.log" 2>&1; then
    tail -n 40 "$BARE_OUT/image-build.log" >&2
    echo "bare.sh: building $BARE_IMAGE failed (log: $BARE_OUT/image-build.log)" >&2
    exit 1
fi
image_s=$(($(date +%s) - _bare_t))

# --- A fresh clone at HEAD --------------------------------------------------------------
commit=$(git rev-parse HEAD)
BARE_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pytest-chaos-bare.XXXXXX")
clone=$BARE_TMP/pytest-chaos
bare_containers=()

_bare_cleanup() {
    local name
    for name in "${bare_containers[@]}"; do
        docker rm -f "$name" >/dev/null 2>&1 || true
    done
    if [ "${CHAOS_CI_BARE_KEEP:-0}" = "1" ]; then
        echo "bare.sh: clone kept in $clone"
        return 0
    fi
    # The container wrote the .venv as root: a non-root caller removes it through Docker.
    if ! rm -rf "$BARE_TMP" 2>/dev/null; then
        docker run --rm --mount "type=bind,source=$BARE_TMP,target=/tmp/bare" "$BARE_IMAGE" \
            rm -rf /tmp/bare/pytest-chaos >/dev/null 2>&1 || true
        rm -rf "$BARE_TMP" || true
    fi
}
trap _bare_cleanup EXIT

git clone --quiet --no-checkout "$REPO_ROOT" "$clone"
git -C "$clone" checkout --quiet --detach "$commit"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "bare.sh: note: uncommitted changes in $REPO_ROOT are not part of this leg (HEAD only)"
fi
echo "bare.sh: fresh clone of $(git -C "$clone" log -1 --format='%h %s') in $clone" \
    "($(git -C "$clone" ls-files | wc -l) tracked files," \
    "$(git -C "$clone" status --porcelain --ignored | wc -l) untracked or ignored)"

# --- What pip on the host sees ------------------------------------------------------------
mounts=()
envs=()
declare -A _bare_mounted=()

# Records host path $1 to be mounted read-only at $2 (default: the same path).
_bare_mount() {
    local src=$1 dst=${2:-$1}
    case "$src" in
        /dev | /dev/* | /proc | /proc/* | /sys | /sys/* | /) return 0 ;;
    esac
    [ -e "$src" ] || return 0
    _bare_mounted[$dst]=$src
}

# Records every existing local path named in the words on stdin: absolute paths and
# file:// URLs; a file:// index URL ending in /simple brings its parent (the index's
# links point at ../../files/).
_bare_mount_named_paths() {
    local word path
    local -a words
    while read -r -a words; do
        for word in "${words[@]}"; do
            case "$word" in
                file://*) path=${word#file://} ;;
                /*) path=$word ;;
                *) continue ;;
            esac
            path=${path%/}
            if [ "${path##*/}" = simple ] && [ -d "$path" ]; then
                path=${path%/simple}
            fi
            _bare_mount "$path"
        done
    done
}

# "variant path" for each configuration file pip would load on this host.
_bare_pip_config_files() {
    local py out
    for py in python3 python; do
        if out=$("$py" -m pip config list -v 2>/dev/null); then
            printf '%s\n' "$out" \
                | sed -n "s/^For variant '\([a-z:]*\)', will try loading '\(.*\)'\$/\1 \2/p"
            return 0
        fi
    done
    # No pip on the host: pip's documented default locations.
    local dir
    local -a xdg_dirs
    IFS=: read -r -a xdg_dirs <<<"${XDG_CONFIG_DIRS:-/etc/xdg}"
    for dir in "${xdg_dirs[@]}"; do
        echo "global $dir/pip/pip.conf"
    done
    echo "global /etc/pip.conf"
    echo "user $HOME/.pip/pip.conf"
    echo "user ${XDG_CONFIG_HOME:-$HOME/.config}/pip/pip.conf"
    if [ -n "${PIP_CONFIG_FILE:-}" ]; then
        echo "env $PIP_CONFIG_FILE"
    fi
}

while read -r variant file; do
    [ -f "$file" ] || continue
    case "$variant" in
        user)
            # The container's user is root: its home is /root.
            case "$file" in
                "$HOME"/*) _bare_mount "$file" "/root/${file#"$HOME"/}" ;;
                *) _bare_mount "$file" ;;
            esac
            ;;
        site)
            # The host interpreter's own file: pip in the container's venv never reads it.
            echo "bare.sh: note: pip site configuration $file is not carried over"
            continue
            ;;
        *) _bare_mount "$file" ;;
    esac
    echo "bare.sh: pip configuration $file"
    # Values only: drop comments, section headers and the "key =" part of each line.
    _bare_mount_named_paths < <(sed -e '/^[[:space:]]*[#;]/d' -e '/^[[:space:]]*\[/d' \
        -e 's/^[A-Za-z0-9_.-]*[[:space:]]*[=:]//' "$file")
done < <(_bare_pip_config_files)

# CA certificates (the hashed names in /etc/ssl/certs link into the two share dirs).
for dir in /etc/ssl/certs /usr/share/ca-certificates /usr/local/share/ca-certificates; do
    _bare_mount "$dir"
done

# PIP_*, CA bundle and proxy variables, by name (docker reads the values from here).
while read -r name; do
    case "$name" in
        PIP_* | *_CA_BUNDLE | SSL_CERT_FILE | SSL_CERT_DIR | http_proxy | https_proxy \
            | no_proxy | all_proxy | HTTP_PROXY | HTTPS_PROXY | NO_PROXY | ALL_PROXY)
            envs+=(-e "$name")
            _bare_mount_named_paths <<<"${!name}"
            ;;
    esac
done < <(compgen -e | sort)
# One mount per path; a path inside a directory mounted at its own place goes with it.
while read -r dst; do
    [ -n "$dst" ] || continue
    src=${_bare_mounted[$dst]}
    covered=
    parent=$dst
    while [ "$src" = "$dst" ] && [ "${parent%/*}" != "" ]; do
        parent=${parent%/*}
        if [ "${_bare_mounted[$parent]:-}" = "$parent" ]; then
            covered=1
            break
        fi
    done
    [ -n "$covered" ] && continue
    mounts+=(--mount "type=bind,source=$src,target=$dst,readonly")
    if [ "$src" = "$dst" ]; then
        echo "bare.sh: mounts read-only $src"
    else
        echo "bare.sh: mounts read-only $src at $dst"
    fi
done < <(printf '%s\n' "${!_bare_mounted[@]}" | sort)
echo "bare.sh: passes ${envs[*]:-no variables}"

# --- The commands -------------------------------------------------------------------------
# Runs "$@" in a fresh container; output to the console and to $BARE_OUT/$1.log.
# Sets step_s and step_rc.
_bare_step() {
    local name=$1
    shift
    local cname="pytest-chaos-bare-$$-$name" t0
    bare_containers+=("$cname")
    echo "== bare: $* (log: $BARE_OUT/$name.log)"
    t0=$(date +%s)
    step_rc=0
    timeout "$BARE_TIMEOUT" docker run --rm --init --name "$cname" --network host \
        --mount "type=bind,source=$clone,target=$BARE_WORKDIR" -w "$BARE_WORKDIR" \
        "${mounts[@]}" "${envs[@]}" "$BARE_IMAGE" "$@" 2>&1 \
        | tee "$BARE_OUT/$name.log" || step_rc=$?
    step_s=$(($(date +%s) - t0))
    if [ "$step_rc" = 124 ]; then
        echo "bare.sh: $* timed out after $BARE_TIMEOUT s" | tee -a "$BARE_OUT/$name.log" >&2
        docker rm -f "$cname" >/dev/null 2>&1 || true
    fi
    echo "bare.sh: $* took $step_s s (exit $step_rc)"
}

# The number before $1 in make chaos's pytest summary, 0 when absent.
_bare_count() {
    local n
    n=$(grep -oE "[0-9]+ $1" <<<"$chaos_summary" | head -n 1 | cut -d' ' -f1 || true)
    echo "${n:-0}"
}

failures=()
install_s=0 install_rc=not-run
chaos_s=0 chaos_rc=not-run chaos_summary=
test_s=0 test_rc=not-run

_bare_step install make .venv/bin/.installed
install_s=$step_s install_rc=$step_rc
if [ "$install_rc" != 0 ]; then
    failures+=("the install (make .venv/bin/.installed) failed: exit $install_rc; make chaos and make test not run")
else
    _bare_step make-chaos make chaos
    chaos_s=$step_s chaos_rc=$step_rc
    [ "$chaos_rc" = 0 ] || failures+=("make chaos failed: exit $chaos_rc")

    # pytest's last line, e.g. "==== 16 passed, 3 deselected in 40.10s ====".
    chaos_summary=$(grep -E ' in [0-9.]+s' "$BARE_OUT/make-chaos.log" \
        | grep -E 'passed|failed|error|skipped|no tests ran' | tail -n 1 \
        | sed -E 's/^=+ //; s/ =+$//' || true)
    if [ -z "$chaos_summary" ]; then
        failures+=("make chaos: no pytest summary line in its output")
    else
        passed=$(_bare_count passed)
        skipped=$(_bare_count skipped)
        [ "$passed" -ge "$BARE_MIN_PASSED" ] \
            || failures+=("make chaos: $passed passed, expected at least $BARE_MIN_PASSED ($chaos_summary)")
        [ "$skipped" -eq 0 ] || failures+=("make chaos: $skipped skipped, expected none ($chaos_summary)")
        if grep -qiE 'failed|error|no tests ran' <<<"$chaos_summary"; then
            failures+=("make chaos: failures or errors ($chaos_summary)")
        fi
    fi

    _bare_step make-test make test
    test_s=$step_s test_rc=$step_rc
    [ "$test_rc" = 0 ] || failures+=("make test failed: exit $test_rc")

    # The gate as a user's CI meets it here: a chaos test whose Docker-only service
    # cannot start must end the strict run with exit 1 (a test error, not a usage
    # error or a skip) and name the missing engine.
    mkdir -p "$clone/strict-probe"
    # its own ini: the repo's pyproject.toml configures the project's own suite
    printf '[pytest]\n' >"$clone/strict-probe/pytest.ini"
    cat >"$clone/strict-probe/test_needs_docker.py" <<'PY'
import pytest


@pytest.mark.chaos(blast_radius=["web"])
def test_a_container_service(chaos, chaos_services):
    chaos_services.container("nginx:alpine", 80, name="web")
PY
    _bare_step strict-probe .venv/bin/python -m pytest -c strict-probe/pytest.ini \
        --rootdir strict-probe strict-probe -m chaos --chaos-strict -p no:cacheprovider -rA
    strict_rc=$step_rc
    if [ "$strict_rc" != 1 ]; then
        failures+=("strict probe: exit $strict_rc, expected 1 (a chaos test that needs Docker, --chaos-strict)")
    elif ! grep -q "Docker" "$BARE_OUT/strict-probe.log"; then
        failures+=("strict probe: exit 1 but the output does not name the missing Docker engine")
    fi
fi

# --- Timings and verdict --------------------------------------------------------------------
leg_s=$(($(date +%s) - _bare_t0))
verdict=pass
[ "${#failures[@]}" -eq 0 ] || verdict=fail
{
    echo "# .ci/bare.sh: the README's commands on a bare machine ($BARE_IMAGE); seconds"
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit=$commit"
    echo "setup_s=$setup_s"
    echo "image_s=$image_s"
    echo "install_s=$install_s"
    echo "install_rc=$install_rc"
    echo "make_chaos_s=$chaos_s"
    echo "make_chaos_rc=$chaos_rc"
    echo "make_chaos_summary=$(printf '%q' "$chaos_summary")"
    echo "make_test_s=$test_s"
    echo "make_test_rc=$test_rc"
    echo "strict_probe_rc=${strict_rc:-not-run}"
    echo "leg_s=$leg_s"
    echo "verdict=$verdict"
} >"$BARE_TIMINGS"

echo "== bare: timings ($BARE_TIMINGS)"
printf '  %-34s %5s s\n' \
    "docker engine + base image" "$setup_s" \
    "image $BARE_IMAGE" "$image_s" \
    "install (.venv, pip)" "$install_s" \
    "make chaos (exit $chaos_rc)" "$chaos_s" \
    "make test (exit $test_rc)" "$test_s" \
    "whole leg" "$leg_s"
[ -z "$chaos_summary" ] || echo "  make chaos: $chaos_summary"

if [ "$verdict" = fail ]; then
    echo "bare.sh: FAILED on a bare machine (logs in $BARE_OUT):" >&2
    printf '  - %s\n' "${failures[@]}" >&2
    exit 1
fi
echo "bare.sh: the README's two commands pass on a bare machine"
