/* Seed 25: a bounded queue slows the producer down to the consumer's pace.
 * Port of 25_backpressure.py. Queue items are pointers: the producer puts pointers to its
 * numbers, and NULL plays None. */
#include <stdio.h>

#include <weft.h>

#define NUM_ITEMS 10

static int producer(void *arg, void **result) {
    weft_queue_t *queue = arg;
    static int numbers[NUM_ITEMS]; /* static: an item must outlive its get */
    int rc;
    for (int i = 0; i < NUM_ITEMS; i++) {
        numbers[i] = i;
        if ((rc = weft_queue_put(queue, &numbers[i])) < 0)
            return rc;
        printf("Produced item: %d\n", i);
        if ((rc = weft_sleep(0.1)) < 0)
            return rc;
    }
    if ((rc = weft_queue_join(queue)) < 0)
        return rc;
    return weft_queue_put(queue, NULL);
}

static int consumer(void *arg, void **result) {
    weft_queue_t *queue = arg;
    for (;;) {
        void *item;
        int rc = weft_queue_get(queue, &item);
        if (rc < 0)
            return rc;
        if (item == NULL)
            break;
        printf("Consumed item: %d\n", *(int *)item);
        if ((rc = weft_sleep(0.5)) < 0)
            return rc;
        weft_queue_task_done(queue);
    }
    return 0;
}

/* async def main() (C's main() is taken) */
static int async_main(void *arg, void **result) {
    weft_queue_options_t opts = {.kind = WEFT_QUEUE_FIFO, .maxsize = 5}; /* Queue(maxsize=5) */
    weft_queue_t *queue;
    weft_task_t *producer_task = NULL, *consumer_task = NULL;
    int rc = weft_queue_new(&queue, &opts);
    if (rc < 0)
        return rc;
    if ((rc = weft_create_task(&producer_task, producer, queue, NULL)) == 0 &&
        (rc = weft_create_task(&consumer_task, consumer, queue, NULL)) == 0)
        rc = weft_gather((weft_task_t *[]){producer_task, consumer_task}, 2, NULL);
    weft_unref(producer_task);
    weft_unref(consumer_task);
    weft_queue_free(queue);
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
