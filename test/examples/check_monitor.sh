#!/bin/sh
# examples/monitor_demo watched with weft-monitor: the demo runs with WEFT_MONITOR set to a Unix
# socket; `ps` lists its tasks, `where` names the functions a task is suspended in, `cancel`
# ends one, an unknown command fails, the interactive console answers, and the socket file is
# gone once the demo has been terminated.
# usage: check_monitor.sh BUILD_DIR
build=$1
demo=$build/examples/monitor_demo
mon=$build/weft-monitor
tmp=$(mktemp -d)
sock=$tmp/demo.sock
fail() {
    printf 'check_monitor: %s\n' "$*" >&2
    [ -f "$tmp/out" ] && sed 's/^/  demo| /' "$tmp/out" >&2
    exit 1
}

WEFT_MONITOR=$sock "$demo" 30 >"$tmp/out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
while [ ! -S "$sock" ]; do
    i=$((i + 1))
    [ $i -le 100 ] || fail "no socket at $sock after 10 s"
    sleep 0.1
done
sleep 0.2 # the demo's tasks start and suspend

ps=$(timeout 10 "$mon" "$sock" ps) || fail "ps failed (status $?)"
for name in ticker producer worker waiter; do
    printf '%s\n' "$ps" | grep -q "^[0-9]*  *$name  " || fail "ps does not list $name:
$ps"
done
printf '%s\n' "$ps" | grep -q "^ID  *NAME  *STATE  *WAITING ON  *AGE  *STACK" || fail "ps header:
$ps"
printf '%s\n' "$ps" | grep -q "weft-monitor" && fail "ps lists the monitor's own task:
$ps"

id=$(printf '%s\n' "$ps" | awk '$2 == "worker" { print $1 }')
where=$(timeout 10 "$mon" "$sock" where "$id") || fail "where $id failed (status $?)"
for frame in "wait_for_job+0x" "worker+0x" "(monitor_demo)" "(libweft"; do
    printf '%s\n' "$where" | grep -qF "$frame" || fail "where $id shows no $frame:
$where"
done
printf '%s\n' "$where" | grep -q "created at .*monitor_demo.c:" || fail "where $id: no site:
$where"

id=$(printf '%s\n' "$ps" | awk '$2 == "waiter" { print $1 }')
out=$(timeout 10 "$mon" "$sock" cancel "$id") || fail "cancel $id failed (status $?): $out"
[ "$out" = "task #$id 'waiter' cancelled" ] || fail "cancel $id said: $out"
ps=$(timeout 10 "$mon" "$sock" ps) || fail "ps failed (status $?)"
printf '%s\n' "$ps" | grep -q "  waiter  " && fail "the waiter is still listed:
$ps"

out=$(timeout 10 "$mon" "$sock" frobnicate)
rc=$?
[ $rc -eq 1 ] || fail "an unknown command exited with $rc"
case $out in "error: unknown command 'frobnicate'"*) ;; *) fail "unknown command: $out" ;; esac

out=$(printf 'stats\nquit\n' | timeout 10 "$mon" "$sock") || fail "interactive: status $?"
for text in "weft monitor" "weft> " "iterations" "watched fds" "bye"; do
    printf '%s\n' "$out" | grep -qF "$text" || fail "interactive session has no '$text':
$out"
done

# SIGTERM (a background job of a script ignores SIGINT): weft_run() cancels main, which ends
# its tasks; the loop closes, and the monitor with it.
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 143 ] || fail "the demo exited with $rc after SIGTERM, not 143"
[ -e "$sock" ] && fail "the socket file is still there"
grep -q "waiter: cancelled" "$tmp/out" || fail "the demo did not see its waiter cancelled"
exit 0
