/* Private to src/debug: a text buffer, and the per-task report that task dumps and the monitor
 * share. */
#ifndef WEFT_DEBUG_DUMP_H
#define WEFT_DEBUG_DUMP_H

#include "../core/internal.h"

/* Text that grows (malloc'd, freed with weft__text_free) or, `fixed`, fills a caller's buffer
 * and is cut there. Always NUL-terminated once something was written. An allocation that fails
 * sets `oom` and drops what comes after. */
typedef struct weft__text {
    char *p;
    size_t len, cap;
    bool fixed;
    bool oom;
} weft__text_t;

void weft__text_printf(weft__text_t *b, const char *fmt, ...) WEFT_PRINTF(2, 3);
void weft__text_free(weft__text_t *b);

/* "new", "ready", "running", "waiting", "done". */
const char *weft__task_state(const weft_task_t *t);
/* Seconds since the task was created, or -1 when unknown (created while neither debug mode
 * nor the monitor was on). */
double weft__task_age(const weft_task_t *t);
/* Bytes of its stack in use: from where it stopped (or, running, where it is now) to the top.
 * 0 for a task that has no stack. */
size_t weft__task_stack_used(const weft_task_t *t);
/* Appends the task's report: one line "task #ID 'NAME': STATE, age, stack", then where it was
 * created and its backtrace, each line starting with `indent`. */
void weft__task_report(weft__text_t *b, const weft_task_t *t, const char *indent);

#endif
