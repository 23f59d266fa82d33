#!/bin/sh
# Seed 27: starts the chat server port on a free loopback port, waits for its READY line, runs
# chat_check.py (the black-box check the Python original passes) against it, then stops it.
# usage: check_chat.sh SERVER_EXE
exe=$1
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/weft-chat.XXXXXX") || exit 1
trap 'kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$exe" "$port" >"$dir/out" 2>"$dir/err" &
pid=$!
i=0
until grep -q "^READY $port\$" "$dir/out"; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "check_chat: no 'READY $port' from $exe" >&2
        cat "$dir/out" "$dir/err" >&2
        exit 1
    fi
    sleep 0.05
done
timeout 30 python3 "$here/chat_check.py" "$port"
rc=$?
kill "$pid"
wait "$pid" 2>/dev/null
if [ -s "$dir/err" ]; then
    echo "check_chat: the server wrote to stderr:" >&2
    cat "$dir/err" >&2
    rc=1
fi
exit $rc
