#!/bin/sh
# Runs one seed port and checks it (the ctest entry seed/<name>):
#   - its stdout equals DATA_DIR/<name>.out, except that HH:MM:SS clock times are masked on both
#     sides (the seeds that print the time of day);
#   - its stderr is empty: any weft report or sanitizer output is a failure;
#   - it exits with 0;
#   - its wall time is within [ideal - 0.1 s, ideal + slack], the ideal from DATA_DIR/walls.txt ('-'
#     means CPU-bound, not timed). The requirement is 0.1 s; the default slack of 0.25 s absorbs
#     sanitizer builds and parallel ctest runs. WEFT_SEED_SLACK_MS overrides it.
# usage: check_seed.sh EXECUTABLE NAME DATA_DIR
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 EXECUTABLE NAME DATA_DIR" >&2
    exit 2
fi
exe=$1
name=$2
data=$3
expected=$data/$name.out
slack_ms=${WEFT_SEED_SLACK_MS:-250}
failed=0

fail() {
    echo "FAIL: $name: $*"
    failed=1
}

if [ ! -f "$expected" ]; then
    echo "FAIL: $name: no expected output $expected"
    exit 1
fi
ideal_ms=$(awk -v n="$name" '$1 == n { print $2; exit }' "$data/walls.txt")
if [ -z "$ideal_ms" ]; then
    echo "FAIL: $name: no wall time in $data/walls.txt"
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-seed-$name.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

start=$(date +%s%N)
"$exe" >"$tmp/stdout" 2>"$tmp/stderr"
status=$?
end=$(date +%s%N)
us=$(((end - start) / 1000))
wall=$(printf '%d.%03d' $((us / 1000000)) $((us / 1000 % 1000)))

[ "$status" -eq 0 ] || fail "exited with status $status"

mask() { sed 's/[0-9][0-9]:[0-9][0-9]:[0-9][0-9]/HH:MM:SS/g' "$1"; }
mask "$expected" >"$tmp/expected.masked"
mask "$tmp/stdout" >"$tmp/stdout.masked"
if ! cmp -s "$tmp/expected.masked" "$tmp/stdout.masked"; then
    fail "stdout differs from $expected (- expected, + actual):"
    diff -u "$tmp/expected.masked" "$tmp/stdout.masked" | sed '1,2d'
fi

if [ -s "$tmp/stderr" ]; then
    fail "stderr is not empty:"
    cat "$tmp/stderr"
fi

if [ "$ideal_ms" = "-" ]; then
    echo "$name: wall ${wall} s (CPU-bound: not timed)"
else
    lo_ms=$((ideal_ms > 100 ? ideal_ms - 100 : 0))
    lo_us=$((lo_ms * 1000))
    hi_us=$(((ideal_ms + slack_ms) * 1000))
    range=$(printf '[%d.%03d, %d.%03d] s' $((lo_ms / 1000)) $((lo_ms % 1000)) \
        $(((ideal_ms + slack_ms) / 1000)) $(((ideal_ms + slack_ms) % 1000)))
    echo "$name: wall ${wall} s, allowed $range"
    if [ "$us" -lt "$lo_us" ] || [ "$us" -gt "$hi_us" ]; then
        fail "wall time ${wall} s is outside $range"
    fi
fi

[ "$failed" -eq 0 ] && echo "PASS: $name"
exit "$failed"
