#!/usr/bin/env bash
# Reference-leak run: the core tests under Debian's debug CPython 3.11, each
# test repeated (3 warm-up runs, 3 measured runs) by tools/refleak.py, which
# fails a test whose total reference count or allocated block count grew on
# every measured run.
#
#   bash .ci/refleak.sh [pytest args...]
#       (default: tests/test_*.py but the hypothesis model test, see below)
#
# Installs python3.11-dbg (apt-get, as root) when it is missing, builds the
# extension for it in .venvs/refleak/ from a clean copy of the work tree, and
# runs the tests from an empty directory, as .ci/test_all.sh does.
#
# Environment:
#   GREENLET_VENV_DIR      where venvs go (default .venvs)
#   GREENLET_REFLEAK_RUNS  warm-up:measured runs (default 3:3)
#   GREENLET_TEST_TIMEOUT  seconds allowed for the pytest run (default 1800)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${GREENLET_VENV_DIR:-$REPO/.venvs}/refleak
RUNS=${GREENLET_REFLEAK_RUNS:-3:3}
TEST_TIMEOUT=${GREENLET_TEST_TIMEOUT:-1800}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONSAFEPATH

# shellcheck source=lib.sh
source "$REPO/.ci/lib.sh"

log() { printf '[refleak] %s\n' "$*"; }

PY=python3.11-dbg
if ! command -v "$PY" >/dev/null 2>&1 || ! "$PY" -c 'import ensurepip, sys; sys.gettotalrefcount' 2>/dev/null; then
    log "installing Debian's python3.11-dbg"
    SUDO=
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    ok=0
    for attempt in 1 2 3; do
        if $SUDO apt-get update -q >/dev/null \
           && $SUDO apt-get install -y -q python3.11-dbg python3.11-dev python3.11-venv >/dev/null; then
            ok=1
            break
        fi
        log "apt-get failed (attempt $attempt); retrying"
        sleep $((attempt * 10))
    done
    if [ "$ok" -ne 1 ] || ! "$PY" -c 'import sys; sys.gettotalrefcount' 2>/dev/null; then
        log "FAILED: cannot install a debug CPython (python3.11-dbg)"
        exit 2
    fi
fi
log "interpreter: $(command -v "$PY") ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"

venv=$WORK/venv src=$WORK/src run=$WORK/run
mkdir -p "$WORK"
if ! "$venv/bin/python" -c 'import sys, pip; sys.gettotalrefcount' >/dev/null 2>&1; then
    rm -rf "$venv"
    "$PY" -m venv "$venv"
fi
rm -rf "$src" "$run"
mkdir -p "$src" "$run"
copy_tree "$src"
t0=$SECONDS
if ! "$venv/bin/python" -m pip install "$src[test]" >"$WORK/pip.log" 2>&1; then
    tail -n 60 "$WORK/pip.log"
    log "FAILED: build/install (full log: $WORK/pip.log)"
    exit 1
fi
log "built and installed in $((SECONDS - t0))s"

if [ "$#" -eq 0 ]; then
    # Not test_model_hypothesis.py: its random programs are drawn anew on
    # every run, so two runs do different work (and hypothesis's own caches
    # grow), and 200 programs a test six times over under the debug
    # interpreter would take most of the run's time.
    set --
    for f in "$REPO"/tests/test_*.py; do
        case $f in */test_model_hypothesis.py) continue ;; esac
        set -- "$@" "$f"
    done
else
    absolute_test_args "$@"
    set -- "${TEST_ARGS[@]}"
fi
t1=$SECONDS
set +e
(cd "$run" && timeout --kill-after=30 "$TEST_TIMEOUT" \
    "$venv/bin/python" "$REPO/tools/refleak.py" \
        --refleak-runs="$RUNS" --refleak-report="$WORK/deltas.tsv" \
        --rootdir="$REPO" -c "$REPO/pyproject.toml" \
        --import-mode=importlib -p no:cacheprovider \
        -o faulthandler_timeout=600 -q "$@") 2>&1 | tee "$WORK/pytest.log"
rc=${PIPESTATUS[0]}
set -e
log "tests took $((SECONDS - t1))s; per-test deltas in $WORK/deltas.tsv; exit $rc"
exit "$rc"
