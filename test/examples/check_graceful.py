#!/usr/bin/env python3
"""examples/graceful_server under SIGTERM, for real.

1. A request in flight when SIGTERM arrives still gets its full answer, an idle connection is
   closed, new connections are refused once the server said it stopped, and it exits 0.
2. With a short grace period, a request that outlasts it is aborted (no answer, the connection
   closed) and the server still exits 0.

usage: check_graceful.py BUILD_DIR
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

BUILD = sys.argv[1]
SERVER = os.path.join(BUILD, "examples", "graceful_server")


def fail(msg, proc=None):
    out = ""
    if proc is not None:
        if proc.poll() is None:
            proc.kill()
        out = proc.stdout.read() if proc.stdout else ""
    sys.exit(f"check_graceful: {msg}\n--- server output ---\n{out}")


def wait_line(proc, pattern, lines, deadline=5.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    fail(f"no line matching {pattern!r}; got {lines!r}", proc)


def start(*args):
    proc = subprocess.Popen([SERVER, *args], stdout=subprocess.PIPE, text=True)
    lines = []
    m = wait_line(proc, r"^listening on 127\.0\.0\.1:(\d+)$", lines)
    return proc, lines, int(m.group(1))


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    return s


def read_all(s):
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return data


def finish(proc, lines):
    try:
        rest, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        fail("the server did not exit", proc)
    lines.append(rest)
    return "".join(lines)


def graceful():
    proc, lines, port = start("0", "5")
    busy = connect(port)
    idle = connect(port)
    busy.sendall(b"hello\n")
    time.sleep(0.1)  # the request is in flight: its answer comes 0.5 s after it arrived
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    wait_line(proc, r"^SIGTERM: stopped accepting; 1 request\(s\) in flight, 1 idle", lines)
    try:
        connect(port).close()
        fail("a new connection was accepted after SIGTERM", proc)
    except ConnectionRefusedError:
        pass
    if read_all(idle) != b"":
        fail("the idle connection got data", proc)
    answer = read_all(busy)
    if answer != b"done: hello\n":
        fail(f"the request in flight got {answer!r}", proc)
    out = finish(proc, lines)
    if proc.returncode != 0:
        fail(f"exit status {proc.returncode}; output:\n{out}")
    if "every request in flight finished" not in out or "bye" not in out:
        fail(f"unexpected output:\n{out}")
    if time.monotonic() - t0 > 3:
        fail("the shutdown took too long")


def deadline():
    proc, lines, port = start("0", "0.3")
    slow = connect(port)
    slow.sendall(b"30\n")  # 30 s of work: more than the grace period
    time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    wait_line(proc, r"^SIGTERM: stopped accepting; 1 request\(s\) in flight", lines)
    answer = read_all(slow)
    if answer != b"":
        fail(f"the aborted request got {answer!r}", proc)
    out = finish(proc, lines)
    if proc.returncode != 0:
        fail(f"exit status {proc.returncode}; output:\n{out}")
    if "aborted 1 connection(s)" not in out:
        fail(f"unexpected output:\n{out}")


graceful()
deadline()
