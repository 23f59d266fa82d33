/* Thread pools: loop.run_in_executor, asyncio.to_thread. */
#include "../core/internal.h"

void weft__executor_loop_close(weft_loop_t *loop) { (void)loop; }
