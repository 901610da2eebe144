#!/usr/bin/env bash
# Memory-checker run: the core tests under valgrind's memcheck, with
# PYTHONMALLOC=malloc so that every Python object is a malloc block memcheck
# watches.  Child interpreters the tests start are traced too.
#
#   bash .ci/memcheck.sh [pytest args...]     (default: tests/test_*.py)
#
# Fails when pytest fails or when memcheck reports an invalid read or write,
# a use of an uninitialised value, a bad free or a bad system-call argument
# whose stack (or allocation/free stack) passes through greenlet/_greenlet*.so
# (tools/vgreport.py decides).  Reports that do not involve the extension are
# counted and listed with -v by tools/vgreport.py, not failed.
# .ci/valgrind-python.supp holds the suppressions, each one explained.
#
# Slow: the whole core suite took 37 minutes under 3.12 on two busy
# cores; it is run on demand, not in .ci/run.
#
# Environment:
#   GREENLET_MEMCHECK_PYTHONS  versions (default "3.12 3.11")
#   GREENLET_VENV_DIR          where venvs go (default .venvs)
#   GREENLET_TEST_TIMEOUT      seconds for one interpreter's run (default 7200)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSIONS=${GREENLET_MEMCHECK_PYTHONS:-3.12 3.11}
WORK=${GREENLET_VENV_DIR:-$REPO/.venvs}/memcheck
TEST_TIMEOUT=${GREENLET_TEST_TIMEOUT:-7200}
PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONSAFEPATH LD_PRELOAD

# shellcheck source=lib.sh
source "$REPO/.ci/lib.sh"

log() { printf '[memcheck] %s\n' "$*"; }

if ! command -v valgrind >/dev/null 2>&1; then
    log "installing valgrind"
    SUDO=
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q valgrind >/dev/null \
        || { log "FAILED: cannot install valgrind"; exit 2; }
fi

# The extension keeps its default optimisation (what users run) plus -g
# for line numbers in the stacks.
export GREENLET_CFLAGS="-g"


if [ "$#" -eq 0 ]; then
    # test_memory_error_from_huge_arguments fills the memory with a dict of
    # str objects until an allocation fails: under valgrind that takes longer than
    # its time limit, and the failing allocation is the interpreter's.
    # test_memory_error_when_the_address_space_runs_out lowers RLIMIT_AS,
    # which valgrind's own address-space manager does not survive.
    set -- "$REPO"/tests/test_*.py \
        --deselect tests/test_faults.py::test_memory_error_from_huge_arguments \
        --deselect tests/test_faults.py::test_memory_error_when_the_address_space_runs_out
else
    absolute_test_args "$@"
    set -- "${TEST_ARGS[@]}"
fi

overall=0
declare -A RESULT
start=$SECONDS
for v in $VERSIONS; do
    t0=$SECONDS
    if ! build_in_venv "$v" "$WORK"; then
        log "Python $v: FAILED: $BUILD_FAILURE"
        RESULT[$v]="FAIL $BUILD_FAILURE"
        overall=1
        continue
    fi
    xml=$base/xml
    rm -rf "$xml"
    mkdir -p "$xml"
    log "===== Python $v: tests under memcheck (built in $((SECONDS - t0))s) ====="
    t1=$SECONDS
    set +e
    # --child-silent-after-fork: a forked child that does not exec would
    #   write into its parent's XML file; children that exec get their own.
    # --leak-check=no: the interpreter does not free everything at exit.
    (cd "$run" && PYTHONMALLOC=malloc \
        timeout --kill-after=30 "$TEST_TIMEOUT" \
        valgrind --tool=memcheck --trace-children=yes --child-silent-after-fork=yes \
            --leak-check=no --num-callers=40 --error-limit=no \
            --suppressions="$REPO/.ci/valgrind-python.supp" \
            --xml=yes --xml-file="$xml/vg.%p.xml" --log-file="$xml/vg.%p.log" \
        "$venv/bin/python" -m pytest \
            --rootdir="$REPO" -c "$REPO/pyproject.toml" \
            --import-mode=importlib -p no:cacheprovider \
            -o faulthandler_timeout=1800 -q "$@") 2>&1 | tee "$base/pytest.log"
    rc=${PIPESTATUS[0]}
    set -e
    summary=$(grep -E '^=*[ ]*[0-9]+ (passed|failed)' "$base/pytest.log" | tail -n 1 | sed -E 's/^=+ *//; s/ *=+$//' || true)
    set +e
    "$venv/bin/python" "$REPO/tools/vgreport.py" "$xml" | tee "$base/report.txt"
    vrc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -ne 0 ] || [ "$vrc" -ne 0 ]; then
        RESULT[$v]="FAIL ${summary:-no summary}; $(tail -n 1 "$base/report.txt") (pytest exit $rc, $((SECONDS - t1))s)"
        overall=1
    else
        RESULT[$v]="ok   ${summary}; $(tail -n 1 "$base/report.txt") ($((SECONDS - t1))s)"
    fi
done

echo
log "===== summary ($((SECONDS - start))s) ====="
for v in $VERSIONS; do
    printf '  py%-5s %s\n' "$v" "${RESULT[$v]:-FAIL not run}"
done
exit "$overall"
