/* Large growable buffers for the compiled matching core (exchange/orders/_matching.pyx): the event buffer.
 *
 * On Linux a buffer is an anonymous mapping advised for transparent huge pages and grown with mremap
 * (no copy), so a batch that appends millions of event rows pays a few hundred 2 MiB page faults
 * instead of tens of thousands of 4 KiB ones. Elsewhere it falls back to malloc / realloc / free.
 * `*mapped` receives the usable size in bytes (>= the request).
 */
#ifndef EXCHANGE_CORE_MEM_H
#define EXCHANGE_CORE_MEM_H

#include <stddef.h>
#include <stdlib.h>

#if defined(__linux__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/mman.h>

#define EX_HUGE (2u << 20)

static inline size_t ex_round_up(size_t bytes) {
    if (bytes < EX_HUGE) {  /* small buffers: whole 4 KiB pages */
        return (bytes + 4095u) & ~(size_t)4095u;
    }
    return (bytes + EX_HUGE - 1) & ~(size_t)(EX_HUGE - 1);
}

static inline void* ex_big_alloc(size_t bytes, size_t* mapped) {
    size_t size = ex_round_up(bytes ? bytes : 1);
    void* p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    if (size >= EX_HUGE) madvise(p, size, MADV_HUGEPAGE);
#endif
    *mapped = size;
    return p;
}

static inline void* ex_big_realloc(void* p, size_t old_mapped, size_t bytes, size_t* mapped) {
    size_t size = ex_round_up(bytes);
    void* q = mremap(p, old_mapped, size, MREMAP_MAYMOVE);
    if (q == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    if (size >= EX_HUGE) madvise(q, size, MADV_HUGEPAGE);
#endif
    *mapped = size;
    return q;
}

static inline void ex_big_free(void* p, size_t mapped) {
    if (p != NULL) munmap(p, mapped);
}

#else  /* portable fallback */

static inline void* ex_big_alloc(size_t bytes, size_t* mapped) {
    void* p = malloc(bytes ? bytes : 1);
    if (p != NULL) *mapped = bytes ? bytes : 1;
    return p;
}

static inline void* ex_big_realloc(void* p, size_t old_mapped, size_t bytes, size_t* mapped) {
    void* q = realloc(p, bytes);
    (void)old_mapped;
    if (q != NULL) *mapped = bytes;
    return q;
}

static inline void ex_big_free(void* p, size_t mapped) {
    (void)mapped;
    free(p);
}

#endif
#endif
