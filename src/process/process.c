/* Child processes: asyncio.create_subprocess_exec. */
#include "../core/internal.h"

void weft__process_loop_close(weft_loop_t *loop) { (void)loop; }
