#!/bin/sh
# examples/deadlock: two tasks waiting on each other. weft must report every task and what it
# waits on, then the program must exit 1, within a second (not hang).
set -u
exe="$1"
err=$(timeout 10 "$exe" 2>&1 >/dev/null)
status=$?
fail() { echo "check_deadlock: $*"; echo "--- stderr:"; echo "$err"; exit 1; }
[ "$status" -eq 1 ] || fail "exit status $status, expected 1"
for want in "deadlock: the loop waits for task #" "3 tasks are asleep" \
            "'alice': waiting on lock (created at " "'bob': waiting on lock (created at " \
            "deadlock.c:" "(EDEADLK)"; do
    case "$err" in
    *"$want"*) ;;
    *) fail "stderr lacks: $want" ;;
    esac
done
echo "ok"
