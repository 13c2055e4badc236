/* Exact integer helpers for the compiled matching core (exchange/orders/_matching.pyx).
 *
 * Every product that can pass 64 bits is formed in a 128-bit intermediate (gcc/clang __int128) and
 * rounded once. C division truncates toward zero; the helpers below implement the floor / ceil rules of
 * the contract (docs/matching.md) exactly as Python's // does, for any sign of the numerator.
 */
#ifndef EXCHANGE_CORE_INT_H
#define EXCHANGE_CORE_INT_H

#include <stdint.h>

typedef __int128 ex_i128;

#define EX_E8 100000000

/* floor(x / d) for d > 0 and any sign of x (Python's x // d). */
static inline ex_i128 ex_floor_div128(ex_i128 x, int64_t d) {
    ex_i128 q = x / d;
    if ((x % d) != 0 && x < 0) q -= 1;
    return q;
}

/* ceil(x / d) for d > 0 and any sign of x (-((-x) // d) in Python). */
static inline ex_i128 ex_ceil_div128(ex_i128 x, int64_t d) {
    ex_i128 q = x / d;
    if ((x % d) != 0 && x > 0) q += 1;
    return q;
}

static inline int64_t ex_clamp64(ex_i128 x) {
    if (x > (ex_i128)INT64_MAX) return INT64_MAX;
    if (x < (ex_i128)INT64_MIN) return INT64_MIN;
    return (int64_t)x;
}

/* fee = ceil(notional * rate_e8 / 1e8), toward +infinity for either sign (a rebate rounds toward zero). */
static inline int64_t ex_fee(int64_t notional_units, int64_t rate_e8) {
    int64_t x;
    if (!__builtin_mul_overflow(notional_units, rate_e8, &x)) {  /* fast path: the product fits in 64 bits */
        int64_t q = x / EX_E8;
        if ((x % EX_E8) != 0 && x > 0) q += 1;
        return q;
    }
    return ex_clamp64(ex_ceil_div128((ex_i128)notional_units * rate_e8, EX_E8));
}

/* floor(a * rate_e8 / 1e8), saturated to int64 (a price band above INT64_MAX can never bind). */
static inline int64_t ex_mul_e8_floor(int64_t a, int64_t rate_e8) {
    return ex_clamp64(ex_floor_div128((ex_i128)a * rate_e8, EX_E8));
}

/* ceil(a * rate_e8 / 1e8), saturated to int64. */
static inline int64_t ex_mul_e8_ceil(int64_t a, int64_t rate_e8) {
    return ex_clamp64(ex_ceil_div128((ex_i128)a * rate_e8, EX_E8));
}

/* a * b * c < limit, exact (|a| < 2^63 and |b * c| < 2^63 so the product fits in 127 bits). */
static inline int ex_mul3_lt(int64_t a, int64_t b, int64_t c, int64_t limit) {
    return (ex_i128)a * ((ex_i128)b * c) < (ex_i128)limit;
}

/* a cache hint: start loading the line holding p (no effect on results) */
#define ex_prefetch(p) __builtin_prefetch((p), 0, 3)

#endif
