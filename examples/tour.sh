#!/bin/sh
# The tour of the seed ports (`make run`): runs every port built in BUILD_DIR (default: build),
# in numeric order, each after a header line with what it shows. Exits non-zero if any fails.
# usage: examples/tour.sh [BUILD_DIR]
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)

# What each seed shows: the first comment line of its Python original
# (../shared/seed-examples/python/<name>.py), copied here for clones without ../shared.
describe() {
    case $1 in
    01_worker) echo "coroutine basics (execute_worker)" ;;
    02_explicit_loop) echo "explicit loop management with run_until_complete" ;;
    03_batch_gather) echo "gather of three workers on an explicit loop" ;;
    04_future_callback) echo "Future + done callback + run_forever, stopped from the callback" ;;
    05_queue_producer_consumer) echo "producer-consumer over an unbounded asyncio.Queue, None as the end signal" ;;
    06_error_handling) echo "an error raised and caught inside a coroutine" ;;
    07_loop_create_task) echo "loop.create_task + run_until_complete(task), then asyncio.create_task inside main" ;;
    08_done_callback) echo "add_done_callback on a task" ;;
    09_task_other_work) echo "a task runs while main does other work, then main awaits it" ;;
    10_gather_tasks) echo "two tasks awaited together with gather" ;;
    11_cancel) echo "cancel a task; it sees the cancellation, re-raises, and the awaiter handles it" ;;
    12_say_hello_tasks) echo "three tasks with different delays, awaited one by one" ;;
    13_say_hello_gather) echo "the same three, gathered" ;;
    14_gather_errors) echo "an error caught inside one of the gathered coroutines; the others go on" ;;
    15_gather_first_error) echo "\"If any coroutine raises an unhandled exception, gather immediately raises the first exception\"" ;;
    16_cancel_gather_return_exceptions) echo "cancel one task, gather with return_exceptions=True" ;;
    17_background_task) echo "a background task that loops until it is cancelled" ;;
    18_say_after_sequential) echo "awaiting coroutines one after the other takes the sum of their delays" ;;
    19_say_after_tasks) echo "as tasks they overlap: 2 s instead of 3 s" ;;
    20_await_task_twice) echo "a task awaited twice runs once and gives the same result both times" ;;
    21_create_future) echo "a low-level future made by the loop, resolved by another task, awaited" ;;
    22_gather_order) echo "gather returns results in the order of its arguments, not of completion" ;;
    23_to_thread) echo "a CPU-bound function runs in a worker thread; the loop stays responsive meanwhile" ;;
    24_cancel_and_timeout) echo "a task that handles its own cancellation and returns a value; wait_for timeouts" ;;
    25_backpressure) echo "a bounded queue slows the producer down to the consumer's pace" ;;
    26_periodic) echo "a periodic task (interval shortened to 0.2 s, stopped after 1.1 s)" ;;
    27_chat_server) echo "chat server; every message a client sends is broadcast to every connected client" ;;
    *) echo "seed port" ;;
    esac
}

# The ports are the sources in examples/seed; the glob sorts them, and the names begin with
# their two-digit number.
status=0
count=0
LC_ALL=C
export LC_ALL
for src in "$here"/seed/[0-9]*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    count=$((count + 1))
    echo "== $name: $(describe "$name") =="
    if [ ! -x "$build/$name" ]; then
        echo "tour: $build/$name is not built (run: cmake --build $build)" >&2
        status=1
        continue
    fi
    if [ "$name" = 27_chat_server ]; then
        # A server: run it against the Python original's client-side check, then stop it.
        sh "$here/../test/seeds/check_chat.sh" "$build/$name"
    else
        "$build/$name"
    fi
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "tour: $name failed (exit status $rc)" >&2
        status=1
    fi
done
if [ "$count" -eq 0 ]; then
    echo "tour: no seed ports in $here/seed" >&2
    exit 1
fi
exit "$status"
