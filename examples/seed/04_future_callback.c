/* Seed 04: Future + done callback + run_forever, stopped from the callback.
 * Port of 04_future_callback.py. */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft.h>

struct produce_args {
    const char *task_id;
    weft_future_t *future_obj;
};

static int produce_result(void *arg, void **result) {
    struct produce_args *args = arg;
    char *text;
    int rc = weft_sleep(1);
    if (rc < 0)
        return rc;
    /* f"Result {task_id}": a new string, freed by whoever takes the future's result */
    if (asprintf(&text, "Result %s", args->task_id) < 0)
        return -ENOMEM;
    rc = weft_future_set_result(args->future_obj, text);
    if (rc < 0)
        free(text);
    return rc;
}

/* partial(on_completion, loop=loop): the loop comes in as the callback's argument. */
static void on_completion(weft_future_t *future, void *arg) {
    weft_loop_t *loop = arg;
    void *data;
    int rc = weft_future_result(future, &data);
    if (rc == 0) {
        printf("%s\n", (char *)data);
        free(data);
    } else {
        fprintf(stderr, "on_completion: %s\n", weft_future_error_message(future));
    }
    weft_loop_stop(loop);
}

static int start_forever_mode(void) {
    weft_loop_t *loop;
    weft_future_t *future;
    int rc = weft_loop_new(&loop, NULL);
    if (rc < 0)
        return rc;
    rc = weft_loop_create_future(loop, &future); /* Future(loop=loop) */
    if (rc == 0) {
        struct produce_args args = {"A", future};
        /* loop.create_task(...) without keeping the task: pass NULL, the loop keeps it */
        rc = weft_loop_create_task(loop, NULL, produce_result, &args, NULL);
        if (rc == 0)
            rc = weft_future_add_done_callback(future, on_completion, loop);
        if (rc == 0)
            rc = weft_loop_run_forever(loop);
        weft_unref(future);
    }
    weft_loop_close(loop); /* finally: loop.close() */
    return rc;
}

int main(void) {
    int rc = start_forever_mode();
    if (rc < 0) {
        fprintf(stderr, "start_forever_mode: %s\n", weft_strerror(rc));
        return 1;
    }
    return 0;
}
