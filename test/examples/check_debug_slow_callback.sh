#!/bin/sh
# examples/debug_slow_callback: with WEFT_DEBUG=1 the task that blocks the loop for 0.2 s is
# reported by name, with where it was created and how long it took; without it, nothing is.
# usage: check_debug_slow_callback.sh BUILD_DIR
prog=$1/examples/debug_slow_callback
fail() { printf 'check_debug_slow_callback: %s\n%s\n' "$1" "$2" >&2; exit 1; }

err=$(WEFT_DEBUG=1 timeout 20 "$prog" 2>&1 >/dev/null)
rc=$?
[ $rc -eq 0 ] || fail "exit status $rc with WEFT_DEBUG=1:" "$err"
case $err in
    *"weft WARNING: Executing <Task 'blocker' #"*" created at "*"debug_slow_callback.c:"*\
" in main_task> took 0.2"*" seconds"*) ;;
    *) fail "no report of the blocking task:" "$err" ;;
esac
# Only the blocking task: the ticker beside it is never slow.
n=$(printf '%s\n' "$err" | grep -c 'Executing')
[ "$n" -eq 1 ] || fail "$n reports:" "$err"

err=$(env -u WEFT_DEBUG timeout 20 "$prog" 2>&1 >/dev/null)
rc=$?
[ $rc -eq 0 ] || fail "exit status $rc without WEFT_DEBUG:" "$err"
case $err in
    *Executing*) fail "a report without WEFT_DEBUG:" "$err" ;;
esac
exit 0
