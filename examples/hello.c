/* The README's example: two tasks that sleep concurrently, gathered. */
#include <stdio.h>
#include <weft.h>

static int say_after(void *arg, void **result) {     /* async def say_after(delay, what): */
    const char *what = arg;
    int rc = weft_sleep(what[0] == 'h' ? 1.0 : 2.0); /*     await asyncio.sleep(delay)   */
    if (rc < 0)
        return rc;                                   /* cancelled: pass it on            */
    printf("%s\n", what);                            /*     print(what)                  */
    return 0;
}

static int main_task(void *arg, void **result) {     /* async def main():                */
    weft_task_t *t[2];
    weft_create_task(&t[0], say_after, "hello", NULL);
    weft_create_task(&t[1], say_after, "world", NULL);
    int rc = weft_gather(t, 2, NULL);                /* both run at once: 2 s, not 3 s   */
    weft_unref(t[0]);
    weft_unref(t[1]);
    return rc;
}

int main(void) { return weft_run(main_task, NULL, NULL) == 0 ? 0 : 1; }
