# Shared helpers of the .ci scripts; sourced, never run.  Expects REPO (the
# checkout) and PYENV_ROOT to be set by the caller.

# Print the interpreter for version $1 (e.g. 3.12): the newest patch release
# under pyenv, else pythonX.Y on PATH if it really is that version.
find_python() {
    local want=$1 dir cand
    dir=$(find "$PYENV_ROOT/versions" -mindepth 1 -maxdepth 1 \
              -regex ".*/${want//./\\.}\.[0-9]+" 2>/dev/null | sort -V | tail -n 1)
    for cand in ${dir:+"$dir/bin/python"} "$(command -v "python$want" || true)"; do
        [ -n "$cand" ] && [ -x "$cand" ] || continue
        if [ "$("$cand" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ]; then
            printf '%s\n' "$cand"
            return 0
        fi
    done
    return 1
}

# Copy the work tree, minus build products and venvs, into directory $1, so
# every build starts clean and nothing is written into the checkout.
copy_tree() {
    tar -C "$REPO" \
        --exclude=./.git --exclude=./.venvs --exclude=./build --exclude=./dist \
        --exclude='*.egg-info' --exclude='*.so' --exclude='*.o' \
        --exclude=__pycache__ --exclude=.pytest_cache --exclude=.hypothesis \
        --exclude=./greenlet/greenlet.h \
        -cf - . | tar -C "$1" -xf -
}

# The tests run from another directory: set TEST_ARGS to "$@" with test
# paths made absolute (not the value of --deselect: a node id relative to
# the checkout).
absolute_test_args() {
    local a p prev=
    TEST_ARGS=()
    for a in "$@"; do
        p=${a%%::*}
        if [ "$prev" != --deselect ] && [ -n "$p" ] && [ -e "$p" ]; then
            a="$(cd "$(dirname "$p")" && pwd)/$(basename "$p")${a#"$p"}"
        fi
        TEST_ARGS+=("$a")
        prev=$a
    done
}

# Build and install a copy of the checkout, with the [test] extra, into the
# venv $2/py$1/venv (reused when it is of that version).  Sets base, venv,
# src and run (emptied); on failure sets BUILD_FAILURE and returns 1.
build_in_venv() {
    local v=$1 py
    base=$2/py$v venv=$2/py$v/venv src=$2/py$v/src run=$2/py$v/run
    BUILD_FAILURE=
    if ! py=$(find_python "$v"); then
        BUILD_FAILURE="no interpreter"
        return 1
    fi
    mkdir -p "$base"
    if ! "$venv/bin/python" -c "import sys, pip; assert '%d.%d' % sys.version_info[:2] == '$v'" >/dev/null 2>&1; then
        rm -rf "$venv"
        "$py" -m venv "$venv"
    fi
    rm -rf "$src" "$run"
    mkdir -p "$src" "$run"
    copy_tree "$src"
    if ! "$venv/bin/python" -m pip install "$src[test]" >"$base/pip.log" 2>&1; then
        tail -n 60 "$base/pip.log"
        BUILD_FAILURE="build (log: $base/pip.log)"
        return 1
    fi
}
