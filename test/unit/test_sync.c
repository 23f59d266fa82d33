/* Synchronization primitives: Lock, Event, Condition, Semaphore, Barrier. */
#include "wt.h"

TEST(placeholder) {}

const wt_test_t wt_tests[] = {
    T(placeholder),
    WT_END,
};
