// Counts heap allocations the way swift-nio's allocation tests do, by defining the allocator's
// entry points in the test executable: the dynamic linker binds every library's (and the Swift
// runtime's) calls to these. Each one forwards to glibc's own implementation, and counts only
// on threads that asked to be counted, so the gateway's event loop can be measured while the
// test's client and backend, on other threads, allocate as they please.
#include "CAllocationCounter.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PORTICO_SANITIZED 1
#endif
#endif

static _Thread_local int counting;
static _Atomic int64_t allocations;

void portico_count_allocations_on_this_thread(int enabled) { counting = enabled; }

int64_t portico_counted_allocations(void) {
    return atomic_load_explicit(&allocations, memory_order_relaxed);
}

// Only glibc has the __libc_* entry points to forward to, and a sanitizer brings its own
// allocator: elsewhere nothing is interposed and the count stays at zero.
#if defined(__GLIBC__) && !defined(PORTICO_SANITIZED)
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void *__libc_valloc(size_t size);

static inline void count_one(void) {
    if (counting) atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
}

void *malloc(size_t size) {
    count_one();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    count_one();
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    count_one();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    count_one();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count_one();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    count_one();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *result = pointer;
    return 0;
}

void *valloc(size_t size) {
    count_one();
    return __libc_valloc(size);
}
#endif
