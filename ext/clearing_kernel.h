/* The clearing kernel's hot loop (levels 0 and 1 of exchange.sweep), in plain C so that the compiler sees
   restrict pointers, a small loop body and no Python state. Filled and called by ext/_clearing.pyx.

   Arithmetic (bounds from exchange.portfolio: every product below fits 64 bits):
     upnl = q × (mark × K) − entry_cost × K
     MM   = (|q|·R_n + D_n) / 1e8  for |q| ≤ qlim, bracket n ∈ {0, 1} chosen by |q| > qcap0 (a branch-free mask), where
            R_n = mark·K·mmr_n and D_n = 1e8 − 1 − cum_x8_n, so that this is ceil((notional·mmr − cum_x8)/1e8)
            in one multiply and one unsigned division by a constant (a multiply-high). Valid because
            qlim ≤ (2^64 − 1 − 1e8) / R_1 keeps |q|·R_n + 1e8 below 2^64 (R_0 ≤ R_1), and
            |q|·R_n ≥ cum_x8_n − (1e8 − 1) inside the bracket (the sum is computed modulo 2^64 and is exact);
            otherwise the general path `slow` (bracket search over all tiers, notional splitting).
   Flags: isolated: q ≠ 0 and margin + upnl ≤ MM; cross part: Σ|q| ≠ 0 and wallet + Σ upnl ≤ Σ MM. */
#ifndef CLEARING_KERNEL_H
#define CLEARING_KERNEL_H
#include <stdint.h>

#define CLR_E8 100000000u

typedef struct {                 /* one 64-byte line per symbol */
    int64_t mk, k;
    uint64_t qcap0;               /* floor(cap_0 / mk): |q| above it is in bracket ≥ 1 */
    uint64_t qlim;                /* |q| ≤ qlim: brackets 0–1 with the one-multiply formula valid */
    uint64_t r0, d0, r1, d1;      /* R_n = mk × mmr_n, D_n = 1e8 − 1 − cum_x8_n (mod 2^64) */
} clr_hot;

typedef int64_t (*clr_slow_fn)(const void *tabs, int64_t symbol, uint64_t aq);  /* the general MM path */

static inline __attribute__((always_inline)) void clr_sweep_body(
    const int level, int64_t n_acct, const int64_t *restrict begin, const int32_t *restrict count,
    const int64_t *restrict wallet, const int16_t *restrict sym, const int8_t *restrict mode,
    const int64_t *restrict qty, const int64_t *restrict entry, const int64_t *restrict margin,
    const clr_hot *restrict hot, const void *tabs, clr_slow_fn slow, uint8_t *restrict pos_liq, uint8_t *restrict acct_liq,
    int64_t *restrict pos_eq, int64_t *restrict pos_mm, int64_t *restrict acct_eq, int64_t *restrict acct_mm,
    int64_t *counts)
{
    int64_t npos = 0, nacct = 0;
    for (int64_t a = 0; a < n_acct; a++) {
        int64_t j = begin[a];
        const int64_t e = j + count[a];
        int64_t eq = wallet[a], mm = 0, size = 0;
        for (; j < e; j++) {
            const clr_hot *h = &hot[sym[j]];
            const int64_t q = qty[j];
            const int64_t upnl = q * h->mk - entry[j] * h->k;
            const uint64_t aq = q < 0 ? -(uint64_t)q : (uint64_t)q;
            int64_t m;
            if (__builtin_expect(aq <= h->qlim, 1)) {
                const uint64_t up = -(uint64_t)(aq > h->qcap0);   /* branch-free bracket 0/1 select */
                m = (int64_t)((aq * (h->r0 ^ ((h->r0 ^ h->r1) & up)) + (h->d0 ^ ((h->d0 ^ h->d1) & up))) / CLR_E8);
            } else {
                m = slow(tabs, sym[j], aq);
            }
            const int64_t iso = mode[j] == 2;
            const int64_t cross = iso - 1;              /* all ones for cross, 0 for isolated */
            const int64_t ieq = margin[j] + upnl;
            const uint8_t pf = (uint8_t)(iso & (q != 0) & (ieq <= m));
            pos_liq[j] = pf;
            npos += pf;
            eq += upnl & cross;
            mm += m & cross;
            size |= q & cross;
            if (level >= 1) {
                pos_eq[j] = iso ? ieq : upnl;
                pos_mm[j] = m;
            }
        }
        const uint8_t af = (uint8_t)((size != 0) & (eq <= mm));
        acct_liq[a] = af;
        nacct += af;
        if (level >= 1) {
            acct_eq[a] = eq;
            acct_mm[a] = mm;
        }
    }
    counts[0] += npos;
    counts[1] += nacct;
}

/* Level 0 (flags only) and level 1 (+ balances and MM): the same body specialised at compile time.
   (A two-phase variant — a flat slot loop into L1 buffers, then per-account sums — measured slower.) */
static __attribute__((noinline)) void clr_sweep_flags(
    int64_t n_acct, const int64_t *begin, const int32_t *count, const int64_t *wallet, const int16_t *sym,
    const int8_t *mode, const int64_t *qty, const int64_t *entry, const int64_t *margin, const clr_hot *hot,
    const void *tabs, clr_slow_fn slow, uint8_t *pos_liq, uint8_t *acct_liq, int64_t *counts)
{
    clr_sweep_body(0, n_acct, begin, count, wallet, sym, mode, qty, entry, margin, hot, tabs, slow, pos_liq, acct_liq,
                   0, 0, 0, 0, counts);
}

static __attribute__((noinline)) void clr_sweep_values(
    int64_t n_acct, const int64_t *begin, const int32_t *count, const int64_t *wallet, const int16_t *sym,
    const int8_t *mode, const int64_t *qty, const int64_t *entry, const int64_t *margin, const clr_hot *hot,
    const void *tabs, clr_slow_fn slow, uint8_t *pos_liq, uint8_t *acct_liq, int64_t *pos_eq, int64_t *pos_mm, int64_t *acct_eq,
    int64_t *acct_mm, int64_t *counts)
{
    clr_sweep_body(1, n_acct, begin, count, wallet, sym, mode, qty, entry, margin, hot, tabs, slow, pos_liq, acct_liq,
                   pos_eq, pos_mm, acct_eq, acct_mm, counts);
}
#endif
