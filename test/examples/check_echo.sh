#!/bin/sh
# examples/echo_server and echo_client together: the server on a free loopback port, the client
# sends three words and must get each back, then the server must report the client gone.
# usage: check_echo.sh BUILD_DIR
build=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/weft-echo.XXXXXX") || exit 1
trap 'kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$build/examples/echo_server" "$port" >"$dir/server" 2>&1 &
pid=$!
i=0
until grep -q "^listening" "$dir/server"; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "check_echo: the server did not start" >&2; cat "$dir/server" >&2; exit 1; }
    sleep 0.05
done
timeout 10 "$build/examples/echo_client" 127.0.0.1 "$port" one two three >"$dir/client" || {
    echo "check_echo: the client failed" >&2; cat "$dir/client" >&2; exit 1; }
printf 'echo: one\necho: two\necho: three\n' | cmp -s - "$dir/client" || {
    echo "check_echo: unexpected client output:" >&2; cat "$dir/client" >&2; exit 1; }
i=0
until grep -q "gone" "$dir/server"; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "check_echo: the server did not see the client go" >&2; cat "$dir/server" >&2; exit 1; }
    sleep 0.05
done
exit 0
