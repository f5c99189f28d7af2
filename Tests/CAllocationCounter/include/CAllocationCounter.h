#ifndef C_ALLOCATION_COUNTER_H
#define C_ALLOCATION_COUNTER_H

#include <stdint.h>

/// Starts or stops counting heap allocations made by the calling thread.
void portico_count_allocations_on_this_thread(int enabled);

/// Heap allocations (malloc, calloc, realloc, and the aligned variants) made by counting
/// threads since the process started.
int64_t portico_counted_allocations(void);

#endif
