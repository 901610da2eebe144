#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run: the extension is built
# with -fsanitize=address,undefined and the core tests run under each
# interpreter with the ASan runtime preloaded (the interpreters themselves
# are not instrumented) and PYTHONMALLOC=malloc, so that Python objects are
# ordinary malloc blocks that ASan watches.
#
#   bash .ci/sanitize.sh [pytest args...]     (default: tests/test_*.py)
#
# Fails when pytest fails or when any process (subprocesses included) wrote
# a sanitizer report.  Reports go to .venvs/sanitize/py3.X/reports/.
#
# Environment:
#   GREENLET_SANITIZE_PYTHONS  versions (default "3.10 3.11 3.12 3.13")
#   GREENLET_VENV_DIR          where venvs go (default .venvs)
#   GREENLET_TEST_TIMEOUT      seconds for one interpreter's tests (default 900)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSIONS=${GREENLET_SANITIZE_PYTHONS:-3.10 3.11 3.12 3.13}
WORK=${GREENLET_VENV_DIR:-$REPO/.venvs}/sanitize
TEST_TIMEOUT=${GREENLET_TEST_TIMEOUT:-900}
PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONSAFEPATH LD_PRELOAD

# shellcheck source=lib.sh
source "$REPO/.ci/lib.sh"

log() { printf '[sanitize] %s\n' "$*"; }

CC=${CC:-gcc}
LIBASAN=$("$CC" -print-file-name=libasan.so)
if [ ! -e "$LIBASAN" ]; then
    log "FAILED: $CC has no libasan.so (Debian: apt-get install libasan8 / gcc)"
    exit 2
fi
LIBASAN=$(readlink -f "$LIBASAN")

# -O1 keeps stack traces readable; frame pointers make them complete.
export GREENLET_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1"


if [ "$#" -eq 0 ]; then
    # test_memory_error_from_huge_arguments fills the memory with a dict of
    # str objects until an allocation fails: under ASan's allocator (redzones,
    # quarantine, PYTHONMALLOC=malloc) that takes longer than
    # its time limit, and the failing allocation is the interpreter's.
    set -- "$REPO"/tests/test_*.py \
        --deselect tests/test_faults.py::test_memory_error_from_huge_arguments
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
    reports=$base/reports
    rm -rf "$reports"
    mkdir -p "$reports"
    so=$(find "$venv" -name "_greenlet*.so" | head -n 1)
    if ! ldd "$so" 2>/dev/null | grep libasan >/dev/null; then
        log "Python $v: $so is not linked with libasan: GREENLET_CFLAGS was not applied"
        RESULT[$v]="FAIL not instrumented"
        overall=1
        continue
    fi
    log "===== Python $v: tests (built in $((SECONDS - t0))s) ====="
    t1=$SECONDS
    set +e
    # detect_leaks=0: the interpreter does not free everything at exit.
    # detect_stack_use_after_return=0: fake stack frames live off the C
    #   stack, which stack slicing cannot copy.
    # allocator_may_return_null=1: an impossible allocation is a MemoryError,
    #   as without ASan, not an abort.
    (cd "$run" && \
        LD_PRELOAD="$LIBASAN" PYTHONMALLOC=malloc \
        ASAN_OPTIONS="detect_leaks=0:detect_stack_use_after_return=0:allocator_may_return_null=1:abort_on_error=1:log_path=$reports/asan" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan" \
        timeout --kill-after=30 "$TEST_TIMEOUT" \
        "$venv/bin/python" -m pytest \
            --rootdir="$REPO" -c "$REPO/pyproject.toml" \
            --import-mode=importlib -p no:cacheprovider \
            -o faulthandler_timeout=600 -q "$@") 2>&1 | tee "$base/pytest.log"
    rc=${PIPESTATUS[0]}
    set -e
    nreports=$(find "$reports" -type f | wc -l)
    summary=$(grep -E '^=*[ ]*[0-9]+ (passed|failed)' "$base/pytest.log" | tail -n 1 | sed -E 's/^=+ *//; s/ *=+$//' || true)
    if [ "$nreports" -ne 0 ]; then
        for f in "$reports"/*; do
            log "report $f:"
            head -n 60 "$f"
        done
    fi
    if [ "$rc" -ne 0 ] || [ "$nreports" -ne 0 ]; then
        RESULT[$v]="FAIL ${summary:-no summary}; $nreports sanitizer reports (pytest exit $rc, $((SECONDS - t1))s)"
        overall=1
    else
        RESULT[$v]="ok   ${summary}; 0 sanitizer reports ($((SECONDS - t1))s)"
    fi
done

echo
log "===== summary ($((SECONDS - start))s) ====="
for v in $VERSIONS; do
    printf '  py%-5s %s\n' "$v" "${RESULT[$v]:-FAIL not run}"
done
exit "$overall"
