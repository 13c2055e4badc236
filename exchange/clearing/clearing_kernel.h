/* The clearing kernel's hot loops (levels 0 and 1 of exchange.clearing.sweep, level 2's ratios), in plain C so that the compiler sees
   restrict pointers, a small loop body and no Python state. Filled and called by exchange/clearing/_sweep.pyx.

   Two implementations of the same integers, chosen once per process at run time (clr_sweep):

   - scalar (any CPU; clr_sweep_range): accounts in order, their positions in order.
       upnl = q × (mark × K) − entry_cost × K
       MM   = (|q|·R_n + D_n) / 1e8  for |q| ≤ qlim, bracket n ∈ {0, 1} chosen by |q| > qcap0 (a branch-free mask),
              R_n = mark·K·mmr_n and D_n = 1e8 − 1 − cum_x8_n, so that this is ceil((notional·mmr − cum_x8)/1e8)
              in one multiply and one unsigned division by a constant (a multiply-high). Valid because
              qlim ≤ (2^64 − 1 − 1e8) / R_1 keeps |q|·R_n + 1e8 below 2^64 (R_0 ≤ R_1), and
              |q|·R_n ≥ cum_x8_n − (1e8 − 1) inside the bracket (the sum is computed modulo 2^64 and is exact);
              otherwise the general path `slow` (bracket search over all tiers, notional splitting).

   - AVX-512 (F, DQ, BW, VL + BMI2; clr_avx512_body), 8 positions per instruction, blocks of 8 accounts.
     Compiled with a target attribute (no -march flag) and selected only if the CPU has it (clr_get_isa).
       per symbol (registers when ≤ 64 symbols, else gathers): mk = mark·K, K and a bracket class c;
       per class (bracket tiers 0–1; registers when ≤ 8 classes, else gathers): cap0, lim, mmr_t, D_t;
       n = |q|·mk (exact, ≤ 2^62); fast lane iff n ≤ lim = min(cap_1, (2^64 − 1e8) / mmr_1), so that
       x = n·mmr_t + D_t (tier t = [n > cap0]) is exact in u64 (0 ≤ n·mmr_t − cum_x8_t ≤ n·mmr_1) and
       MM = floor(x / 1e8). The quotient is seeded in float64 (x/1e8 < 1.9e11, relative error < 2^-51: off by
       at most one) and corrected exactly with the 64-bit remainder x − y·1e8 ∈ [−1e8, 2e8). Lanes above lim
       (higher tiers, huge sizes) get their MM from the general path (clr_patch_slow, rare).
       Layouts: 8 accounts × 4 positions back to back (the common case) sum per account by folding lanes
       pairwise (3 levels of even/odd permutes); any other block whose accounts lie in order inside a
       window of ≤ 64 slots (variable counts, slack gaps masked) uses in-register prefix sums (mod 2^64)
       differenced at the accounts' ends; anything else (relocated blocks out of order) runs the scalar code.
       Flags only (level 0) sums (upnl − MM): the account is liquidatable iff it has a cross size and
       wallet + Σ(upnl − MM) ≤ 0 — the exact value lies in [−2^63, 2^62] by the portfolio bound, so the
       wrapping sum is exact; the size test runs only for the (rare) candidates.
       Software prefetch (CLR_PF slots ahead): the 8 input streams are too many for the hardware prefetcher
       alone (measured: 12.3 ms without, 4.2 ms with, for 4M positions).

   Flags: isolated: q ≠ 0 and margin + upnl ≤ MM; cross part: Σ|q| ≠ 0 and wallet + Σ upnl ≤ Σ MM — with the
   profile's trigger (exchange.accounts.margin.trigger_terms): balance + strict ≤ MM and MM ≥ min_mm. With iso_entry
   (bybit, bitmex) an isolated position's MM is charged on its entry value |entry_cost|·K (≤ 2^62 by the
   portfolio bound) instead of |q|·mark·K: the scalar loop takes the general path for it, the vector path
   substitutes that notional in the lane (same arithmetic after it). */
#ifndef CLEARING_KERNEL_H
#define CLEARING_KERNEL_H
#include <stdint.h>
#include <string.h>
#include "clearing_int128.h"

#define CLR_E8 100000000u

typedef struct {                 /* one 64-byte line per symbol (scalar path) */
    int64_t mk, k;
    uint64_t qcap0;               /* floor(cap_0 / mk): |q| above it is in bracket ≥ 1 */
    uint64_t qlim;                /* |q| ≤ qlim: brackets 0–1 with the one-multiply formula valid */
    uint64_t r0, d0, r1, d1;      /* R_n = mk × mmr_n, D_n = 1e8 − 1 − cum_x8_n (mod 2^64) */
} clr_hot;

/* Tables of the vector path (built per sweep by _sweep.pyx). With perm_sym, n_sym ≤ 64 and the per-symbol
   arrays are padded to 64; with perm_cls, ≤ 8 classes and the per-class arrays padded to 8 (mr, d: 16).
   Without perm_cls the class of a symbol is the symbol itself (cls unused). */
typedef struct {
    int perm_sym, perm_cls;
    const int64_t *mk, *k;        /* per symbol */
    const int16_t *cls;           /* per symbol: bracket class (perm_cls only; 64 entries) */
    const uint64_t *cap0, *lim;   /* per class: notional cap of tier 0, fast-path limit of the notional */
    const uint64_t *mr, *d;       /* per class × 2 (index 2·class + tier): mmr_n and D_n = 1e8 − 1 − cum_x8_n */
} clr_vtab;

typedef int64_t (*clr_slow_fn)(const void *tabs, int64_t symbol, uint64_t aq);  /* the general MM path */
typedef int64_t (*clr_slow_n_fn)(const void *tabs, int64_t symbol, uint64_t notional);  /* MM of a notional */

typedef struct {
    const int64_t *begin; const int32_t *count; const int64_t *wallet;
    const int16_t *sym; const int8_t *mode; const int64_t *qty, *entry, *margin;
    uint8_t *pos_liq, *acct_liq;
    int64_t *pos_eq, *pos_mm, *acct_eq, *acct_mm;      /* level ≥ 1 */
    const clr_hot *hot; const void *tabs; clr_slow_fn slow; clr_slow_n_fn slow_n;
    int64_t strict, min_mm;                             /* the trigger: balance + strict ≤ MM and MM ≥ min_mm */
    int iso_entry;                                      /* isolated MM on the entry value */
} clr_io;

/* Σ MM of the cross positions of account a (the general path; only for the rare level-0 candidates when
   the trigger needs MM > 0). */
static int64_t clr_cross_mm(const clr_io *io, int64_t a)
{
    int64_t mm = 0;
    for (int64_t j = io->begin[a], e = io->begin[a] + io->count[a]; j < e; j++)
        if (io->mode[j] != 2) {
            const int64_t q = io->qty[j];
            mm += io->slow(io->tabs, io->sym[j], q < 0 ? -(uint64_t)q : (uint64_t)q);
        }
    return mm;
}

/* ------------------------------------------------------------------------------------------- scalar */
static inline __attribute__((always_inline)) void clr_sweep_range(
    const int level, int64_t a0, int64_t a1, const clr_io *io, int64_t *counts)
{
    const int64_t *restrict begin = io->begin, *restrict wallet = io->wallet;
    const int32_t *restrict count = io->count;
    const int16_t *restrict sym = io->sym;
    const int8_t *restrict mode = io->mode;
    const int64_t *restrict qty = io->qty, *restrict entry = io->entry, *restrict margin = io->margin;
    const clr_hot *restrict hot = io->hot;
    uint8_t *restrict pos_liq = io->pos_liq, *restrict acct_liq = io->acct_liq;
    int64_t *restrict pos_eq = io->pos_eq, *restrict pos_mm = io->pos_mm;
    int64_t *restrict acct_eq = io->acct_eq, *restrict acct_mm = io->acct_mm;
    const int64_t strict = io->strict, min_mm = io->min_mm;
    const int iso_entry = io->iso_entry;
    int64_t npos = 0, nacct = 0;
    for (int64_t a = a0; a < a1; a++) {
        int64_t j = begin[a];
        const int64_t e = j + count[a];
        int64_t eq = wallet[a], mm = 0, size = 0;
        for (; j < e; j++) {
            const clr_hot *h = &hot[sym[j]];
            const int64_t q = qty[j];
            const int64_t upnl = q * h->mk - entry[j] * h->k;
            const uint64_t aq = q < 0 ? -(uint64_t)q : (uint64_t)q;
            const int64_t iso = mode[j] == 2;
            int64_t m;
            if (__builtin_expect(iso_entry && iso, 0)) {
                const uint64_t ae = entry[j] < 0 ? -(uint64_t)entry[j] : (uint64_t)entry[j];
                m = io->slow_n(io->tabs, sym[j], ae * (uint64_t)h->k);
            } else if (__builtin_expect(aq <= h->qlim, 1)) {
                const uint64_t up = -(uint64_t)(aq > h->qcap0);   /* branch-free bracket 0/1 select */
                m = (int64_t)((aq * (h->r0 ^ ((h->r0 ^ h->r1) & up)) + (h->d0 ^ ((h->d0 ^ h->d1) & up))) / CLR_E8);
            } else {
                m = io->slow(io->tabs, sym[j], aq);
            }
            const int64_t cross = iso - 1;              /* all ones for cross, 0 for isolated */
            const int64_t ieq = margin[j] + upnl;
            const uint8_t pf = (uint8_t)(iso & (q != 0) & (ieq + strict <= m) & (m >= min_mm));
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
        const uint8_t af = (uint8_t)((size != 0) & (eq + strict <= mm) & (mm >= min_mm));
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

static __attribute__((noinline)) void clr_scalar_flags(int64_t a0, int64_t a1, const clr_io *io, int64_t *counts)
{
    clr_sweep_range(0, a0, a1, io, counts);
}

static __attribute__((noinline)) void clr_scalar_values(int64_t a0, int64_t a1, const clr_io *io, int64_t *counts)
{
    clr_sweep_range(1, a0, a1, io, counts);
}

/* ------------------------------------------------------------------------------------------- AVX-512 */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(CLR_NO_AVX512)
#define CLR_HAVE_AVX512 1
#include <immintrin.h>
#define CLR_T512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,bmi,bmi2,popcnt")))
#define CLR_BLK 64                /* slots of one block of 8 accounts */

/* 64-entry qword table in 8 registers, indexed by the low 6 bits of s (b4, b5: bits 4 and 5 of s) */
CLR_T512 static inline __attribute__((always_inline)) __m512i clr_lut64(const __m512i *t, __m512i s, __mmask8 b4, __mmask8 b5)
{
    __m512i x0 = _mm512_permutex2var_epi64(t[0], s, t[1]);
    __m512i x1 = _mm512_permutex2var_epi64(t[2], s, t[3]);
    __m512i x2 = _mm512_permutex2var_epi64(t[4], s, t[5]);
    __m512i x3 = _mm512_permutex2var_epi64(t[6], s, t[7]);
    x0 = _mm512_mask_blend_epi64(b4, x0, x1);
    x2 = _mm512_mask_blend_epi64(b4, x2, x3);
    return _mm512_mask_blend_epi64(b5, x0, x2);
}

/* inclusive prefix sum of the 8 lanes, plus carry (all lanes) */
CLR_T512 static inline __attribute__((always_inline)) __m512i clr_scan8(__m512i x, __m512i carry)
{
    const __m512i z = _mm512_setzero_si512();
    x = _mm512_add_epi64(x, _mm512_alignr_epi64(x, z, 7));
    x = _mm512_add_epi64(x, _mm512_alignr_epi64(x, z, 6));
    x = _mm512_add_epi64(x, _mm512_alignr_epi64(x, z, 4));
    return _mm512_add_epi64(x, carry);
}

/* per-sweep lookup tables held in registers (when the variant allows) */
typedef struct {
    __m512i mk[8], k[8], c0, c1, cap, lim, mr0, mr1, d0, d1;
} clr_regs;

/* MM of the lanes in m by the general path (notional above tier 1 or above the one-multiply range) */
CLR_T512 static __attribute__((noinline, cold)) __m512i clr_patch_slow(__m512i mm, __mmask8 m, __m512i s, __m512i n, const clr_io *io)
{
    int64_t mv[8], sv[8], nv[8];
    _mm512_storeu_si512(mv, mm);
    _mm512_storeu_si512(sv, s);
    _mm512_storeu_si512(nv, n);
    for (unsigned b = m; b; b &= b - 1) {
        const int i = __builtin_ctz(b);
        mv[i] = io->slow_n(io->tabs, sv[i], (uint64_t)nv[i]);
    }
    return _mm512_loadu_si512(mv);
}

/* one vector of 8 slots j..j+7 (lanes outside km read as empty slots) */
typedef struct {
    __m512i upnl, mm, ieq;
    __mmask8 iso, nz, slow;       /* slow: lanes whose MM came from the general path */
} clr_v8;

CLR_T512 static inline __attribute__((always_inline)) clr_v8 clr_eval8(
    const int psym, const int pcls, const int full, const __mmask8 km, const int64_t j, const clr_io *io,
    const clr_vtab *vt, const clr_regs *R)
{
    clr_v8 o;
    const __m128i s16 = full ? _mm_loadu_si128((const __m128i *)(io->sym + j)) : _mm_maskz_loadu_epi16(km, io->sym + j);
    const __m128i md = full ? _mm_loadl_epi64((const __m128i *)(io->mode + j)) : _mm_maskz_loadu_epi8(km, io->mode + j);
    const __m512i q = full ? _mm512_loadu_si512(io->qty + j) : _mm512_maskz_loadu_epi64(km, io->qty + j);
    const __m512i en = full ? _mm512_loadu_si512(io->entry + j) : _mm512_maskz_loadu_epi64(km, io->entry + j);
    const __m512i mg = full ? _mm512_loadu_si512(io->margin + j) : _mm512_maskz_loadu_epi64(km, io->margin + j);
    const __m512i s = _mm512_cvtepu16_epi64(s16);
    __m512i mk, k, c, cap0, lim, mr, d;
    if (psym) {
        const __mmask8 b4 = _mm512_test_epi64_mask(s, _mm512_set1_epi64(16));
        const __mmask8 b5 = _mm512_test_epi64_mask(s, _mm512_set1_epi64(32));
        mk = clr_lut64(R->mk, s, b4, b5);
        k = clr_lut64(R->k, s, b4, b5);
    } else {
        mk = _mm512_i64gather_epi64(s, (const void *)vt->mk, 8);
        k = _mm512_i64gather_epi64(s, (const void *)vt->k, 8);
    }
    if (pcls) {
        c = _mm512_cvtepu16_epi64(_mm512_castsi512_si128(_mm512_permutex2var_epi16(R->c0, _mm512_castsi128_si512(s16), R->c1)));
        cap0 = _mm512_permutexvar_epi64(c, R->cap);
        lim = _mm512_permutexvar_epi64(c, R->lim);
    } else {
        c = s;
        cap0 = _mm512_i64gather_epi64(c, (const void *)vt->cap0, 8);
        lim = _mm512_i64gather_epi64(c, (const void *)vt->lim, 8);
    }
    o.upnl = _mm512_sub_epi64(_mm512_mullo_epi64(q, mk), _mm512_mullo_epi64(en, k));
    o.iso = (__mmask8)_mm_cmpeq_epi8_mask(md, _mm_set1_epi8(2));
    __m512i n = _mm512_mullo_epi64(_mm512_abs_epi64(q), mk);                /* notional, ≤ 2^62 */
    if (io->iso_entry)                                                      /* isolated: the entry value */
        n = _mm512_mask_mullo_epi64(n, o.iso, _mm512_abs_epi64(en), k);
    const __mmask8 up = _mm512_cmpgt_epu64_mask(n, cap0);
    o.slow = _mm512_mask_cmpgt_epu64_mask(km, n, lim);
    __m512i ci = _mm512_add_epi64(c, c);
    ci = _mm512_mask_add_epi64(ci, up, ci, _mm512_set1_epi64(1));
    if (pcls) {
        mr = _mm512_permutex2var_epi64(R->mr0, ci, R->mr1);
        d = _mm512_permutex2var_epi64(R->d0, ci, R->d1);
    } else {
        mr = _mm512_i64gather_epi64(ci, (const void *)vt->mr, 8);
        d = _mm512_i64gather_epi64(ci, (const void *)vt->d, 8);
    }
    const __m512i e8 = _mm512_set1_epi64(CLR_E8), one = _mm512_set1_epi64(1);
    const __m512i x = _mm512_add_epi64(_mm512_mullo_epi64(n, mr), d);        /* exact: see the header */
    __m512i y = _mm512_cvttpd_epu64(_mm512_mul_pd(_mm512_cvtepu64_pd(x), _mm512_set1_pd(1e-8)));
    const __m512i r = _mm512_sub_epi64(x, _mm512_mullo_epi64(y, e8));
    y = _mm512_mask_sub_epi64(y, _mm512_movepi64_mask(r), y, one);           /* r < 0 */
    o.mm = _mm512_mask_add_epi64(y, _mm512_cmpge_epi64_mask(r, e8), y, one);
    if (__builtin_expect(o.slow != 0, 0))
        o.mm = clr_patch_slow(o.mm, o.slow, s, n, io);
    o.nz = _mm512_test_epi64_mask(q, q);
    o.ieq = _mm512_add_epi64(mg, o.upnl);
    return o;
}

/* isolated lanes liquidatable by the trigger: q ≠ 0, balance + strict ≤ MM and MM ≥ min_mm */
CLR_T512 static inline __attribute__((always_inline)) __mmask8 clr_pflag(const clr_v8 *o, __m512i vs, __m512i vmin)
{
    return o->iso & o->nz & _mm512_cmple_epi64_mask(_mm512_add_epi64(o->ieq, vs), o->mm)
        & _mm512_cmpge_epi64_mask(o->mm, vmin);
}

#ifndef CLR_PF
#define CLR_PF 1024               /* software prefetch distance in slots (the stream is too wide for the HW prefetcher alone) */
#endif

CLR_T512 static inline __attribute__((always_inline)) void clr_avx512_body(
    const int level, const int psym, const int pcls, int64_t n_acct, const clr_io *io, const clr_vtab *vt, int64_t *counts)
{
    const int64_t *restrict begin = io->begin, *restrict wallet = io->wallet;
    const int32_t *restrict count = io->count;
    uint8_t *restrict pos_liq = io->pos_liq, *restrict acct_liq = io->acct_liq;
    int64_t *restrict pos_eq = io->pos_eq, *restrict pos_mm = io->pos_mm;
    int64_t *restrict acct_eq = io->acct_eq, *restrict acct_mm = io->acct_mm;

    clr_regs R;
    memset(&R, 0, sizeof R);
    if (psym)
        for (int i = 0; i < 8; i++) {
            R.mk[i] = _mm512_loadu_si512(vt->mk + 8 * i);
            R.k[i] = _mm512_loadu_si512(vt->k + 8 * i);
        }
    if (pcls) {
        R.c0 = _mm512_loadu_si512(vt->cls);
        R.c1 = _mm512_loadu_si512(vt->cls + 32);
        R.cap = _mm512_loadu_si512(vt->cap0);
        R.lim = _mm512_loadu_si512(vt->lim);
        R.mr0 = _mm512_loadu_si512(vt->mr);
        R.mr1 = _mm512_loadu_si512(vt->mr + 8);
        R.d0 = _mm512_loadu_si512(vt->d);
        R.d1 = _mm512_loadu_si512(vt->d + 8);
    }
    const __m512i zero = _mm512_setzero_si512(), seven = _mm512_set1_epi64(7), four = _mm512_set1_epi64(4);
    const __m512i vs = _mm512_set1_epi64(io->strict), vmin = _mm512_set1_epi64(io->min_mm);
    const __m512i ev = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), od = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
    const __m128i one8 = _mm_set1_epi8(1);
    const __m256i one8y = _mm256_set1_epi8(1);
    const __m512i one8z = _mm512_set1_epi8(1);
    /* prefix buffers of the general block: index 0 holds 0, index 1 + i the sum of the block's slots 0..i */
    int64_t bufA[CLR_BLK + 8] __attribute__((aligned(64)));
    int64_t bufB[CLR_BLK + 8] __attribute__((aligned(64)));
    bufA[0] = 0;
    bufB[0] = 0;
    int64_t npos = 0, nacct = 0;
    int64_t a = 0;
    for (; a + 8 <= n_acct; a += 8) {
        const __m512i vb = _mm512_loadu_si512(begin + a);
        const __m512i vc = _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(count + a)));
        const __m512i ve = _mm512_add_epi64(vb, vc);
        const __m512i vbn = _mm512_alignr_epi64(vb, vb, 1);     /* begin of the next account in lane i */
        const int64_t b0 = begin[a];
        for (int i = 0; i < 4; i++) {
            _mm_prefetch((const char *)(io->qty + b0 + CLR_PF + 8 * i), _MM_HINT_T0);
            _mm_prefetch((const char *)(io->entry + b0 + CLR_PF + 8 * i), _MM_HINT_T0);
            _mm_prefetch((const char *)(io->margin + b0 + CLR_PF + 8 * i), _MM_HINT_T0);
        }
        _mm_prefetch((const char *)(io->sym + b0 + CLR_PF), _MM_HINT_T0);
        _mm_prefetch((const char *)(io->mode + b0 + CLR_PF), _MM_HINT_T0);
        _mm_prefetch((const char *)(begin + a + CLR_PF / 4), _MM_HINT_T0);
        _mm_prefetch((const char *)(wallet + a + CLR_PF / 4), _MM_HINT_T0);
        _mm_prefetch((const char *)(count + a + CLR_PF / 4), _MM_HINT_T0);
        const __m512i w = _mm512_loadu_si512(wallet + a);
        __mmask8 cand;
        if (_mm512_cmpeq_epi64_mask(vc, four) == 0xFF && (_mm512_cmpeq_epi64_mask(ve, vbn) & 0x7F) == 0x7F) {
            /* ---- 8 accounts × 4 positions back to back: 32 slots, sums by pairwise lane folding */
            const clr_v8 v0 = clr_eval8(psym, pcls, 1, 0xFF, b0, io, vt, &R);
            const clr_v8 v1 = clr_eval8(psym, pcls, 1, 0xFF, b0 + 8, io, vt, &R);
            const clr_v8 v2 = clr_eval8(psym, pcls, 1, 0xFF, b0 + 16, io, vt, &R);
            const clr_v8 v3 = clr_eval8(psym, pcls, 1, 0xFF, b0 + 24, io, vt, &R);
            const uint32_t pf = (uint32_t)clr_pflag(&v0, vs, vmin)
                | (uint32_t)clr_pflag(&v1, vs, vmin) << 8
                | (uint32_t)clr_pflag(&v2, vs, vmin) << 16
                | (uint32_t)clr_pflag(&v3, vs, vmin) << 24;
            _mm256_storeu_si256((__m256i *)(pos_liq + b0), _mm256_maskz_mov_epi8(pf, one8y));
            npos += __builtin_popcount(pf);
            uint32_t nzc = (uint32_t)(v0.nz & ~v0.iso & 0xFF) | (uint32_t)(v1.nz & ~v1.iso & 0xFF) << 8
                | (uint32_t)(v2.nz & ~v2.iso & 0xFF) << 16 | (uint32_t)(v3.nz & ~v3.iso & 0xFF) << 24;
            nzc |= nzc >> 1;
            nzc |= nzc >> 2;
            const __mmask8 has = (__mmask8)_pext_u32(nzc, 0x11111111u);
            if (level == 0) {
                const __m512i c0 = _mm512_maskz_sub_epi64(~v0.iso, v0.upnl, v0.mm);
                const __m512i c1 = _mm512_maskz_sub_epi64(~v1.iso, v1.upnl, v1.mm);
                const __m512i c2 = _mm512_maskz_sub_epi64(~v2.iso, v2.upnl, v2.mm);
                const __m512i c3 = _mm512_maskz_sub_epi64(~v3.iso, v3.upnl, v3.mm);
                const __m512i p01 = _mm512_add_epi64(_mm512_permutex2var_epi64(c0, ev, c1), _mm512_permutex2var_epi64(c0, od, c1));
                const __m512i p23 = _mm512_add_epi64(_mm512_permutex2var_epi64(c2, ev, c3), _mm512_permutex2var_epi64(c2, od, c3));
                const __m512i S = _mm512_add_epi64(_mm512_permutex2var_epi64(p01, ev, p23), _mm512_permutex2var_epi64(p01, od, p23));
                cand = _mm512_cmple_epi64_mask(_mm512_add_epi64(_mm512_add_epi64(w, S), vs), zero) & has;
            } else {
                _mm512_storeu_si512(pos_eq + b0, _mm512_mask_blend_epi64(v0.iso, v0.upnl, v0.ieq));
                _mm512_storeu_si512(pos_eq + b0 + 8, _mm512_mask_blend_epi64(v1.iso, v1.upnl, v1.ieq));
                _mm512_storeu_si512(pos_eq + b0 + 16, _mm512_mask_blend_epi64(v2.iso, v2.upnl, v2.ieq));
                _mm512_storeu_si512(pos_eq + b0 + 24, _mm512_mask_blend_epi64(v3.iso, v3.upnl, v3.ieq));
                _mm512_storeu_si512(pos_mm + b0, v0.mm);
                _mm512_storeu_si512(pos_mm + b0 + 8, v1.mm);
                _mm512_storeu_si512(pos_mm + b0 + 16, v2.mm);
                _mm512_storeu_si512(pos_mm + b0 + 24, v3.mm);
                const __m512i u0 = _mm512_maskz_mov_epi64(~v0.iso, v0.upnl), m0 = _mm512_maskz_mov_epi64(~v0.iso, v0.mm);
                const __m512i u1 = _mm512_maskz_mov_epi64(~v1.iso, v1.upnl), m1 = _mm512_maskz_mov_epi64(~v1.iso, v1.mm);
                const __m512i u2 = _mm512_maskz_mov_epi64(~v2.iso, v2.upnl), m2 = _mm512_maskz_mov_epi64(~v2.iso, v2.mm);
                const __m512i u3 = _mm512_maskz_mov_epi64(~v3.iso, v3.upnl), m3 = _mm512_maskz_mov_epi64(~v3.iso, v3.mm);
                const __m512i pu01 = _mm512_add_epi64(_mm512_permutex2var_epi64(u0, ev, u1), _mm512_permutex2var_epi64(u0, od, u1));
                const __m512i pu23 = _mm512_add_epi64(_mm512_permutex2var_epi64(u2, ev, u3), _mm512_permutex2var_epi64(u2, od, u3));
                const __m512i pm01 = _mm512_add_epi64(_mm512_permutex2var_epi64(m0, ev, m1), _mm512_permutex2var_epi64(m0, od, m1));
                const __m512i pm23 = _mm512_add_epi64(_mm512_permutex2var_epi64(m2, ev, m3), _mm512_permutex2var_epi64(m2, od, m3));
                const __m512i eq = _mm512_add_epi64(w, _mm512_add_epi64(_mm512_permutex2var_epi64(pu01, ev, pu23),
                                                                        _mm512_permutex2var_epi64(pu01, od, pu23)));
                const __m512i SM = _mm512_add_epi64(_mm512_permutex2var_epi64(pm01, ev, pm23), _mm512_permutex2var_epi64(pm01, od, pm23));
                _mm512_storeu_si512(acct_eq + a, eq);
                _mm512_storeu_si512(acct_mm + a, SM);
                cand = _mm512_cmple_epi64_mask(_mm512_add_epi64(eq, vs), SM) & _mm512_cmpge_epi64_mask(SM, vmin) & has;
            }
        } else {
            /* ---- general block: slots in order inside a window of ≤ 64 (gaps masked), prefix sums */
            const int64_t T = begin[a + 7] + count[a + 7] - b0;
            const __mmask8 ordered = _mm512_cmple_epi64_mask(ve, vbn) & _mm512_cmpge_epi64_mask(vc, zero);
            if ((ordered & 0x7F) != 0x7F || (uint64_t)T > CLR_BLK || count[a + 7] < 0) {
                if (level == 0) clr_scalar_flags(a, a + 8, io, counts); else clr_scalar_values(a, a + 8, io, counts);
                continue;
            }
            uint64_t own;                                        /* slots of the window owned by the block */
            if ((_mm512_cmpeq_epi64_mask(ve, vbn) & 0x7F) == 0x7F) {
                own = _bzhi_u64(~(uint64_t)0, (unsigned)T);
            } else {
                own = 0;
                for (int i = 0; i < 8; i++)
                    if (count[a + i] > 0)   /* then begin − b0 < 64 */
                        own |= _bzhi_u64(~(uint64_t)0, (unsigned)count[a + i]) << (begin[a + i] - b0);
            }
            uint64_t pfm = 0, nzc = 0;
            __m512i carA = zero, carB = zero;
            for (int64_t v = 0; 8 * v < T; v++) {
                const __mmask8 km = (__mmask8)(own >> (8 * v));
                const int64_t j = b0 + 8 * v;
                const clr_v8 o = clr_eval8(psym, pcls, 0, km, j, io, vt, &R);
                const __mmask8 cross = km & ~o.iso;
                pfm |= (uint64_t)clr_pflag(&o, vs, vmin) << (8 * v);
                nzc |= (uint64_t)(o.nz & cross) << (8 * v);
                if (level == 0) {
                    const __m512i p = clr_scan8(_mm512_maskz_sub_epi64(cross, o.upnl, o.mm), carA);
                    _mm512_storeu_si512(bufA + 1 + 8 * v, p);
                    carA = _mm512_permutexvar_epi64(seven, p);
                } else {
                    const __m512i pa = clr_scan8(_mm512_maskz_mov_epi64(cross, o.upnl), carA);
                    const __m512i pb = clr_scan8(_mm512_maskz_mov_epi64(cross, o.mm), carB);
                    _mm512_storeu_si512(bufA + 1 + 8 * v, pa);
                    _mm512_storeu_si512(bufB + 1 + 8 * v, pb);
                    carA = _mm512_permutexvar_epi64(seven, pa);
                    carB = _mm512_permutexvar_epi64(seven, pb);
                    _mm512_mask_storeu_epi64(pos_eq + j, km, _mm512_mask_blend_epi64(o.iso, o.upnl, o.ieq));
                    _mm512_mask_storeu_epi64(pos_mm + j, km, o.mm);
                }
            }
            const __m512i vb0 = _mm512_set1_epi64(b0);
            const __m512i os = _mm512_sub_epi64(vb, vb0), oe = _mm512_sub_epi64(ve, vb0);
            if (level == 0) {
                const __m512i S = _mm512_sub_epi64(_mm512_i64gather_epi64(oe, (const void *)bufA, 8),
                                                   _mm512_i64gather_epi64(os, (const void *)bufA, 8));
                cand = _mm512_cmple_epi64_mask(_mm512_add_epi64(_mm512_add_epi64(w, S), vs), zero);
            } else {
                const __m512i SE = _mm512_sub_epi64(_mm512_i64gather_epi64(oe, (const void *)bufA, 8),
                                                    _mm512_i64gather_epi64(os, (const void *)bufA, 8));
                const __m512i SM = _mm512_sub_epi64(_mm512_i64gather_epi64(oe, (const void *)bufB, 8),
                                                    _mm512_i64gather_epi64(os, (const void *)bufB, 8));
                const __m512i eq = _mm512_add_epi64(w, SE);
                _mm512_storeu_si512(acct_eq + a, eq);
                _mm512_storeu_si512(acct_mm + a, SM);
                cand = _mm512_cmple_epi64_mask(_mm512_add_epi64(eq, vs), SM) & _mm512_cmpge_epi64_mask(SM, vmin);
            }
            for (unsigned m = cand; m; m &= m - 1) {   /* rare: liquidatable only with a cross size */
                const int i = __builtin_ctz(m);
                if (count[a + i] <= 0 || !((nzc >> (begin[a + i] - b0)) & _bzhi_u64(~(uint64_t)0, (unsigned)count[a + i])))
                    cand &= (__mmask8)~(1u << i);
            }
            _mm512_mask_storeu_epi8(pos_liq + b0, own, _mm512_maskz_mov_epi8(pfm, one8z));
            npos += __builtin_popcountll(pfm);
        }
        if (level == 0 && io->min_mm)                 /* rare candidates: MM > 0 needs their Σ MM */
            for (unsigned m = cand; m; m &= m - 1)
                if (clr_cross_mm(io, a + __builtin_ctz(m)) < io->min_mm)
                    cand &= (__mmask8)~(1u << __builtin_ctz(m));
        _mm_storel_epi64((__m128i *)(acct_liq + a), _mm_maskz_mov_epi8(cand, one8));
        nacct += __builtin_popcount(cand);
    }
    counts[0] += npos;
    counts[1] += nacct;
    if (a < n_acct) {
        if (level == 0) clr_scalar_flags(a, n_acct, io, counts); else clr_scalar_values(a, n_acct, io, counts);
    }
}

#define CLR_VARIANT(name, level, psym, pcls) \
    CLR_T512 static __attribute__((noinline)) void name(int64_t n, const clr_io *io, const clr_vtab *vt, int64_t *c) \
    { clr_avx512_body(level, psym, pcls, n, io, vt, c); }
CLR_VARIANT(clr_avx512_f00, 0, 0, 0)
CLR_VARIANT(clr_avx512_f01, 0, 0, 1)
CLR_VARIANT(clr_avx512_f10, 0, 1, 0)
CLR_VARIANT(clr_avx512_f11, 0, 1, 1)
CLR_VARIANT(clr_avx512_v00, 1, 0, 0)
CLR_VARIANT(clr_avx512_v01, 1, 0, 1)
CLR_VARIANT(clr_avx512_v10, 1, 1, 0)
CLR_VARIANT(clr_avx512_v11, 1, 1, 1)

static int clr_cpu_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
}
#else
static int clr_cpu_avx512(void) { return 0; }
#endif

/* ------------------------------------------------------------------------------------------- dispatch */
enum { CLR_ISA_SCALAR = 0, CLR_ISA_AVX512 = 1 };
static int clr_isa_active = -1;    /* chosen on first use; clr_set_isa overrides (tests) */

static int clr_isa_available(int isa)
{
    return isa == CLR_ISA_SCALAR || (isa == CLR_ISA_AVX512 && clr_cpu_avx512());
}

static int clr_get_isa(void)
{
    if (clr_isa_active < 0)
        clr_isa_active = clr_cpu_avx512() ? CLR_ISA_AVX512 : CLR_ISA_SCALAR;
    return clr_isa_active;
}

static int clr_set_isa(int isa)    /* returns the ISA now active (unchanged if `isa` is unavailable) */
{
    if (isa >= 0 && clr_isa_available(isa))
        clr_isa_active = isa;
    return clr_get_isa();
}

/* Level 2 after level 1: ratios from the written balances and MM (isolated slots and cross parts). */
static inline int64_t clr_ratio_e8(int64_t mm, int64_t balance, int has_size)
{
    /* ceil(MM × 1e8 / balance), 0 without size, INT64_MAX if balance ≤ 0; saturating (MM ≥ 0, balance > 0) */
    if (!has_size)
        return 0;
    if (balance <= 0)
        return INT64_MAX;
    if ((uint64_t)mm <= UINT64_C(92233720368)) {   /* mm·1e8 < 2^63: 64-bit division */
        const uint64_t u = ((uint64_t)mm * CLR_E8 + (uint64_t)(balance - 1)) / (uint64_t)balance;
        return u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
    }
    const clr_u128 r = ((clr_u128)(uint64_t)mm * CLR_E8 + (clr_u128)(uint64_t)(balance - 1)) / (clr_u128)(uint64_t)balance;
    return r > (clr_u128)INT64_MAX ? INT64_MAX : (int64_t)r;
}

static void clr_ratios(int64_t n_acct, const clr_io *io, int64_t *restrict pos_ratio, int64_t *restrict acct_ratio)
{
    for (int64_t a = 0; a < n_acct; a++) {
        const int64_t b = io->begin[a], e = b + io->count[a];
        int64_t size = 0;
        for (int64_t j = b; j < e; j++) {
            const int64_t q = io->qty[j];
            if (io->mode[j] == 2) {
                pos_ratio[j] = clr_ratio_e8(io->pos_mm[j], io->pos_eq[j], q != 0);
            } else {
                pos_ratio[j] = 0;
                size |= q;
            }
        }
        acct_ratio[a] = clr_ratio_e8(io->acct_mm[a], io->acct_eq[a], size != 0);
    }
}

/* Levels 0 (flags only) and 1 (+ balances and MM). */
static void clr_sweep(int level, int64_t n_acct, const clr_io *io, const clr_vtab *vt, int64_t *counts)
{
#ifdef CLR_HAVE_AVX512
    if (clr_get_isa() == CLR_ISA_AVX512) {
        const int v = (vt->perm_sym ? 2 : 0) | (vt->perm_cls ? 1 : 0);
        if (level == 0) {
            if (v == 0) clr_avx512_f00(n_acct, io, vt, counts);
            else if (v == 1) clr_avx512_f01(n_acct, io, vt, counts);
            else if (v == 2) clr_avx512_f10(n_acct, io, vt, counts);
            else clr_avx512_f11(n_acct, io, vt, counts);
        } else {
            if (v == 0) clr_avx512_v00(n_acct, io, vt, counts);
            else if (v == 1) clr_avx512_v01(n_acct, io, vt, counts);
            else if (v == 2) clr_avx512_v10(n_acct, io, vt, counts);
            else clr_avx512_v11(n_acct, io, vt, counts);
        }
        return;
    }
#endif
    if (level == 0) clr_scalar_flags(0, n_acct, io, counts); else clr_scalar_values(0, n_acct, io, counts);
}
#endif
