#!/bin/sh
# Runs the unit tests labelled "valgrind" under memcheck: test/unit/valgrind.sh BUILD_DIR
# (a plain, unsanitized build). Each runner forks its test; memcheck follows the fork, and
# --error-exitcode makes the child's exit status, hence the test, fail on any error or
# definite leak.
set -u
build=${1:?usage: $0 BUILD_DIR}
list=$(cd "$build" && ctest -L valgrind -N | sed -n 's|.*Test *#[0-9]*: unit/\([a-z]*\)/\([a-z0-9_]*\)$|\1 \2|p')
[ -n "$list" ] || { echo "no valgrind-labelled tests in $build" >&2; exit 1; }
echo "$list" | while read -r group name; do
    if WT_TIMEOUT_MULT=10 WT_TIME_TOLERANCE=0.2 valgrind -q --error-exitcode=99 \
        --leak-check=full --errors-for-leak-kinds=definite \
        "$build/test/unit/test_$group" "$name" >/dev/null 2>"$build/valgrind-$group-$name.log"; then
        echo "ok   $group/$name"
    else
        echo "FAIL $group/$name (see $build/valgrind-$group-$name.log)"
        echo 1 >"$build/valgrind-failed"
    fi
done
if [ -f "$build/valgrind-failed" ]; then rm -f "$build/valgrind-failed"; exit 1; fi
