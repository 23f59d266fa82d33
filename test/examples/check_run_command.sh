#!/bin/sh
# examples/run_command: the output of a known command, line by line with stderr merged and a
# last line without its newline, then its exit status (also the program's own); a command
# killed by a signal; the default command; and a line printed as soon as it arrives, not when
# the command ends.
# usage: check_run_command.sh BUILD_DIR
prog=$1/examples/run_command
out=$(timeout 10 "$prog" sh -c 'echo one; echo two >&2; printf three; exit 3')
rc=$?
expected='out| one
out| two
out| three
exit status 3'
[ "$out" = "$expected" ] || {
    printf 'check_run_command: unexpected output:\n%s\n' "$out" >&2; exit 1; }
[ $rc -eq 3 ] || { echo "check_run_command: exit status $rc, expected 3" >&2; exit 1; }
out=$(timeout 10 "$prog" sh -c 'kill -9 $$')
rc=$?
[ "$out" = "killed by signal 9 (Killed)" ] && [ $rc -eq 137 ] || {
    printf 'check_run_command: killed child: status %s, output:\n%s\n' "$rc" "$out" >&2; exit 1; }
out=$(timeout 10 "$prog")
expected='out| line 1
out| line 2
out| line 3
exit status 0'
[ "$out" = "$expected" ] || {
    printf 'check_run_command: default command:\n%s\n' "$out" >&2; exit 1; }
start=$(date +%s%N)
first=$(timeout 10 "$prog" sh -c 'echo first; sleep 1.5; echo second' | {
    read -r line; now=$(date +%s%N); echo "$line $(( (now - start) / 1000000 ))"; cat >/dev/null; })
case $first in
    "out| first "*) ms=${first##* } ;;
    *) echo "check_run_command: streaming: got '$first'" >&2; exit 1 ;;
esac
[ "$ms" -lt 1000 ] || { echo "check_run_command: the first line came after $ms ms" >&2; exit 1; }
exit 0
