#!/usr/bin/env bash
# The C-level test of the stack-switch primitive (tests/platform_switch/):
# src/stack.c with the platform header, built natively for x86-64 (the
# control) and cross-compiled statically for AArch64 and run under
# qemu-user, each at several optimisation levels.
#
#   bash .ci/aarch64.sh [scenarios]      (default 40 scenarios per build)
#
# Installs Debian's gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and
# qemu-user when they are missing (needs root and the Debian mirror).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCENARIOS=${1:-40}
TEST=tests/platform_switch/switch_test.c
INCLUDES=(-I tests/platform_switch/shim -I src)
CFLAGS=(-std=c11 -Wall -Wextra -Werror)
LEVELS=("-O0" "-O2" "-O2 -fno-omit-frame-pointer" "-O3 -fomit-frame-pointer" "-Os")

log() { printf '[aarch64] %s\n' "$*"; }

if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null \
   || [ ! -e /usr/aarch64-linux-gnu/lib/libc.a ]; then
    log "installing the AArch64 cross compiler and qemu-user"
    export DEBIAN_FRONTEND=noninteractive
    apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
    apt_get update -qq >/dev/null
    apt_get install -y -qq --no-install-recommends \
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=0 passed=0

run_one() {   # name compiler runner flags...
    local name=$1 cc=$2 runner=$3
    shift 3
    local bin="$out/$name"
    if ! "$cc" "${CFLAGS[@]}" "$@" "${INCLUDES[@]}" "$TEST" -o "$bin" -lm; then
        log "FAIL $name: does not compile"
        failed=$((failed + 1))
        return
    fi
    local result rc=0
    result=$(timeout 300 $runner "$bin" "$SCENARIOS" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ]; then
        log "pass $name: $result"
        passed=$((passed + 1))
    else
        log "FAIL $name (exit $rc): $result"
        failed=$((failed + 1))
    fi
}

for level in "${LEVELS[@]}"; do
    # shellcheck disable=SC2086  # $level holds several flags
    run_one "x86-64 ${level// /_}" gcc "" $level
done
for level in "${LEVELS[@]}"; do
    # shellcheck disable=SC2086
    run_one "aarch64 ${level// /_}" aarch64-linux-gnu-gcc qemu-aarch64 -static $level
done

echo "aarch64: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
