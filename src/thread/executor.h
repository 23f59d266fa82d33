/* Private to src/thread: what the blocking-call wrappers (files.c) take from the executor. */
#ifndef WEFT_EXECUTOR_H
#define WEFT_EXECUTOR_H

#include <stdbool.h>

#include "../core/internal.h"

/* weft_to_thread() for callers that must undo a call whose result they will not use: runs
 * fn(arg) on the running loop's default executor and waits for it. Returns the job's outcome
 * (0 and *value, or its error, message set), or -ECANCELED if the job never ran. *cancelled
 * tells whether the calling task was cancelled meanwhile: the job then either never ran
 * (-ECANCELED returned) or ran to its end (its outcome returned, for the caller to undo).
 * Outside a task: -EPERM. */
int weft__to_thread(weft_job_fn fn, void *arg, void **value, bool *cancelled);

#endif
