#!/usr/bin/env bash
# Build greenlet and run the test suite under every supported CPython.
#
#   bash .ci/test_all.sh [pytest args...]
#
# For each of 3.10-3.13 (pyenv installs under $PYENV_ROOT/versions), in turn:
#   1. reuse or create the venv .venvs/py3.X/venv;
#   2. copy the work tree (minus build products) to .venvs/py3.X/src, so
#      every build starts clean and nothing is written into the checkout;
#   3. pip install that copy with the [test] extra: a real, non-editable
#      install, built through the pyproject build backend; then the client
#      libraries of tests/clients/requirements.txt, without dependencies;
#   4. run pytest on tests/ from the empty directory .venvs/py3.X/run, so the
#      checkout's greenlet/ folder (which has no compiled extension) can never
#      shadow the installed package, in this process or in subprocesses.
# Then print one summary line per interpreter and a total; exit non-zero if
# any interpreter failed to build or to pass.
#
# Environment:
#   GREENLET_PYTHONS       versions to test (default "3.10 3.11 3.12 3.13")
#   GREENLET_VENV_DIR      where venvs, copies and logs go (default .venvs)
#   GREENLET_TEST_TIMEOUT  seconds allowed for one interpreter's pytest run
#                          (default 900); then it is killed and fails
#   GREENLET_CFLAGS        extra compiler flags (see setup.py)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSIONS=${GREENLET_PYTHONS:-3.10 3.11 3.12 3.13}
WORK=${GREENLET_VENV_DIR:-$REPO/.venvs}
TEST_TIMEOUT=${GREENLET_TEST_TIMEOUT:-900}
PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONSAFEPATH

# shellcheck source=lib.sh
source "$REPO/.ci/lib.sh"

log() { printf '[test_all] %s\n' "$*"; }


declare -A PYTHON
missing=0
for v in $VERSIONS; do
    if PYTHON[$v]=$(find_python "$v"); then
        log "Python $v: ${PYTHON[$v]}"
    else
        log "ERROR: no Python $v found (looked in $PYENV_ROOT/versions/$v.* and for python$v on PATH)"
        missing=1
    fi
done
if [ "$missing" -ne 0 ]; then
    log "FAILED: install the missing interpreter(s), e.g. 'pyenv install 3.X'"
    exit 2
fi

mkdir -p "$WORK"
declare -A STATUS DETAIL
total_passed=0 total_failed=0 total_skipped=0
overall=0
run_start=$SECONDS
if [ "$#" -gt 0 ]; then
    absolute_test_args "$@"
    set -- "${TEST_ARGS[@]}"
fi

for v in $VERSIONS; do
    py=${PYTHON[$v]}
    base=$WORK/py$v
    venv=$base/venv
    src=$base/src
    run=$base/run
    mkdir -p "$base"
    t0=$SECONDS
    log "===== Python $v: build and install ====="

    # 1. The venv: reuse it unless it is broken or of another version.
    if ! "$venv/bin/python" -c "import sys, pip; assert '%d.%d' % sys.version_info[:2] == '$v'" >/dev/null 2>&1; then
        rm -rf "$venv"
        "$py" -m venv "$venv"
    fi

    # 2. A clean copy of the work tree (uncommitted files included).
    rm -rf "$src" "$run"
    mkdir -p "$src" "$run"
    copy_tree "$src"

    # 3. Install it, with the test dependencies.
    pip_log=$base/pip.log
    # (pip always rebuilds and reinstalls a project given as a directory.)
    # Client libraries (gevent, ...) for tests/clients: --no-deps, so they
    # never replace the greenlet under test (see tests/clients/README.md).
    clients=$src/tests/clients/requirements.txt
    if ! "$venv/bin/python" -m pip install "$src[test]" >"$pip_log" 2>&1 \
       || { [ -f "$clients" ] && ! "$venv/bin/python" -m pip install --no-deps -r "$clients" >>"$pip_log" 2>&1; }; then
        tail -n 80 "$pip_log"
        log "Python $v: BUILD/INSTALL FAILED (full log: $pip_log)"
        STATUS[$v]=FAIL DETAIL[$v]="build/install failed ($((SECONDS - t0))s)"
        total_failed=$((total_failed + 1)) overall=1
        continue
    fi
    if ! (cd "$run" && "$venv/bin/python" -c "
import os, sys, greenlet
where = os.path.realpath(greenlet.__file__)
assert where.startswith(os.path.realpath(sys.prefix)), where
print('[test_all] installed greenlet', greenlet.__version__, 'at', os.path.dirname(where))
"); then
        log "Python $v: the installed greenlet does not import"
        STATUS[$v]=FAIL DETAIL[$v]="installed package does not import"
        total_failed=$((total_failed + 1)) overall=1
        continue
    fi
    build_s=$((SECONDS - t0))

    # 4. The tests.
    log "===== Python $v: tests ====="
    test_log=$base/pytest.log
    t1=$SECONDS
    set +e
    (cd "$run" && timeout --kill-after=30 "$TEST_TIMEOUT" \
        "$venv/bin/python" -m pytest "$REPO/tests" \
            --rootdir="$REPO" -c "$REPO/pyproject.toml" \
            --import-mode=importlib -p no:cacheprovider \
            -o faulthandler_timeout=300 -q "$@") 2>&1 | tee "$test_log"
    rc=${PIPESTATUS[0]}
    set -e
    test_s=$((SECONDS - t1))

    # pytest -q ends with e.g. "3 failed, 800 passed, 5 skipped in 41.2s".
    summary=$( { grep -E '^=*[ ]*[0-9]+ (passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?)' "$test_log" || true; } | tail -n 1 | sed -E 's/^=+ *//; s/ *=+$//')
    count() { { printf '%s\n' "$summary" | grep -oE "[0-9]+ ($1)" || true; } | awk '{s += $1} END {print s + 0}'; }
    passed=$(count passed)
    failed=$(( $(count failed) + $(count 'errors?') ))
    skipped=$(count skipped)
    case $rc in
        0) STATUS[$v]=ok ;;
        124|137) STATUS[$v]=FAIL summary="TIMEOUT after ${TEST_TIMEOUT}s; ${summary:-no summary}" ;;
        5) STATUS[$v]=FAIL summary="no tests collected" ;;
        *) STATUS[$v]=FAIL ;;
    esac
    if [ "$rc" -ne 0 ]; then
        overall=1
        # A crash or timeout leaves no count behind: count it as one failure.
        [ "$failed" -gt 0 ] || failed=1
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    total_skipped=$((total_skipped + skipped))
    DETAIL[$v]="${summary:-pytest exited $rc without a summary} (build ${build_s}s, tests ${test_s}s, exit $rc)"
done

echo
log "===== summary ($((SECONDS - run_start))s) ====="
for v in $VERSIONS; do
    printf '  py%-5s %-4s %s\n' "$v" "${STATUS[$v]:-FAIL}" "${DETAIL[$v]:-not run}"
done
echo "total: $total_passed passed, $total_failed failed, $total_skipped skipped"
exit "$overall"
