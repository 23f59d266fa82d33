/* Seed 05: producer-consumer over an unbounded asyncio.Queue, None as the end signal.
 * Port of 05_queue_producer_consumer.py. Queue items are pointers: the producer puts pointers
 * to its numbers, and NULL plays None. */
#include <stdio.h>

#include <weft.h>

static int producer(void *arg, void **result) {
    weft_queue_t *q = arg;
    static int numbers[5] = {0, 1, 2, 3, 4}; /* static: an item must outlive its get */
    int rc;
    for (int i = 0; i < 5; i++) {
        if ((rc = weft_queue_put(q, &numbers[i])) < 0)
            return rc;
        printf("Produced: %d\n", i);
    }
    return weft_queue_put(q, NULL);
}

static int consumer(void *arg, void **result) {
    weft_queue_t *q = arg;
    for (;;) {
        void *item;
        int rc = weft_queue_get(q, &item);
        if (rc < 0)
            return rc;
        if (item == NULL)
            break;
        printf("Consumed: %d\n", *(int *)item);
        weft_queue_task_done(q);
    }
    return 0;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    weft_queue_t *q;
    weft_task_t *prod = NULL, *cons = NULL;
    int rc = weft_queue_new(&q, NULL); /* asyncio.Queue() */
    if (rc < 0)
        return rc;
    /* await asyncio.gather(producer(q), consumer(q)) */
    if ((rc = weft_create_task(&prod, producer, q, NULL)) == 0 &&
        (rc = weft_create_task(&cons, consumer, q, NULL)) == 0)
        rc = weft_gather((weft_task_t *[]){prod, cons}, 2, NULL);
    weft_unref(prod);
    weft_unref(cons);
    weft_queue_free(q);
    return rc;
}

int main(void) {
    int rc = weft_run(async_main, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "main: %s (%s)\n", weft_error_message(), weft_err_name(rc));
        return 1;
    }
    return 0;
}
