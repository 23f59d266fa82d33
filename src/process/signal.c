/* Signal handlers: loop.add_signal_handler. */
#include "../core/internal.h"

void weft__signal_dispatch(weft_loop_t *loop) { (void)loop; }
void weft__signal_loop_close(weft_loop_t *loop) { (void)loop; }
bool weft__signal_expected(weft_loop_t *loop) { (void)loop; return false; }
int weft__signal_watch(weft_loop_t *loop, weft__sigwatch_t *w) { (void)loop; (void)w; return WEFT_ENOSYS; }
void weft__signal_unwatch(weft_loop_t *loop, weft__sigwatch_t *w) { (void)loop; (void)w; }
