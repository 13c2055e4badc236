# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=False
"""Compiled clearing kernel: the full mark-to-market sweep and the liquidation-index thresholds.

Twin of the pure-Python reference in ``exchange.clearing.sweep`` / ``exchange.liquidation.index`` (which define the results);
same integers, same flags. Called only through those modules (users never import this one).

Arithmetic (all exact; see ``exchange.accounts.storage`` for the bounds that make int64 safe):

- ``upnl = q × (mark × K) − entry_cost × K`` (int64; each product ≤ 2⁶²).
- ``MM = ceil((notional × mmr − cum_x8) / 10⁸)``. The sweep runs the C loops of ``clearing_kernel.h``, chosen
  once per process from the CPU (``kernel_isa()``; ``set_kernel_isa()`` forces one, for tests):
  - AVX-512 (8 positions per instruction, blocks of 8 accounts): per symbol mk = mark·K, K and a bracket
    class; per class the tier-0/1 constants (all in registers for ≤ 64 symbols and ≤ 8 classes, else
    gathers). ``n = |q|·mk``; for ``n ≤ lim = min(cap_1, (2⁶⁴ − 10⁸) // mmr_1)`` ``MM = (n·mmr_t + D_t) // 10⁸``
    (``D_t = 10⁸ − 1 − cum_x8_t`` mod 2⁶⁴; exact in u64), the quotient seeded in float64 and corrected exactly
    with the 64-bit remainder; other lanes take the general path below. Per-account cross sums by lane
    folding (4 positions per account) or in-register prefix sums (any counts); flags from ``balance ≤ MM``
    (the table's trigger: ``balance + strict ≤ MM and MM ≥ min_mm``; with ``iso_entry`` an isolated lane's
    notional is its entry value ``|entry_cost|·K``).
  - scalar (any x86-64 / other CPUs): per symbol ``R_n = mark·K·mmr_n`` and ``D_n`` for brackets 0–1, so
    ``MM = (|q|·R_n + D_n) // 10⁸`` (one multiply, one multiply-high), valid where ``cap_n·mmr_n + 10⁸ < 2⁶⁴``
    (checked per symbol).
  The general path (both): a branch-free bracket search in lots (``|q| ≤ floor(cap / (mark·K))`` ⇔
  ``notional ≤ cap``) and ``mark·K·mmr = rhi·10⁸ + rlo`` (128-bit, once per symbol) so
  ``MM = |q|·rhi − cum_units + (|q|·rlo + 10⁸ − 1 − cum_rem) // 10⁸`` for ``|q| < 2³⁷``, or the notional split
  ``n = A·10⁸ + B`` beyond.
- Only unsigned / provably non-negative values are divided under ``cdivision`` (marked per function);
  signed divisions keep Python floor semantics.
- Ratios (``ceil(MM × 10⁸ / balance)``, saturating at 2⁶³ − 1) are computed only at level 2, after the level-1
  pass, from its balances and MM (64-bit division when ``MM·10⁸ < 2⁶³``, else 128-bit).

Sections: tables, position arithmetic, sweep, index thresholds (isolated), index bands (cross).
"""
cimport cython
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.math cimport isfinite

import numpy as np

cdef extern from "clearing_int128.h":
    ctypedef long long i128 "clr_i128"
    ctypedef unsigned long long u128 "clr_u128"

cdef enum:
    NBMAX = 16          # brackets per symbol
    LEGMAX = 8          # positions of one symbol in one account's cross part
    ISOLATED = 2        # exchange.enums.MarginMode.ISOLATED
    DIR_DOWN = 0        # entry fires when mark ≤ value
    DIR_UP = 1          # entry fires when mark ≥ value

    E8 = 100000000      # compile-time constants, so divisions by them become multiply-high
    E8U = 100000000
    FASTQ_BITS = 37     # |q| < 2^37: the two-multiply MM path cannot overflow 64 bits

cdef extern from *:
    """
    #define CLR_I64MAX ((int64_t)0x7FFFFFFFFFFFFFFFLL)
    """
    int64_t I64MAX "CLR_I64MAX"


# =========================================================================================== tables
cdef struct SymTab:
    int64_t k
    int64_t mark
    int64_t mk            # mark × K
    int64_t maxp
    int32_t nb
    uint64_t cap[NBMAX]   # lookup caps in notional units (last real bracket and padding: INT64_MAX)
    uint64_t qcap[NBMAX]  # floor(cap / mk): the same test in lots, for this mark
    int64_t mmr[NBMAX]
    int64_t cq[NBMAX]     # cum_x8 // 1e8
    int64_t cr[NBMAX]     # cum_x8 % 1e8
    uint64_t crc[NBMAX]   # 1e8 − 1 − cr
    uint64_t rhi[NBMAX]   # (mk × mmr) // 1e8
    uint64_t rlo[NBMAX]   # (mk × mmr) % 1e8


cdef extern from "clearing_kernel.h":
    ctypedef struct clr_hot:
        int64_t mk
        int64_t k
        uint64_t qcap0
        uint64_t qlim
        uint64_t r0
        uint64_t d0
        uint64_t r1
        uint64_t d1
    ctypedef int64_t (*clr_slow_fn)(const void* tabs, int64_t symbol, uint64_t aq) noexcept nogil
    ctypedef int64_t (*clr_slow_n_fn)(const void* tabs, int64_t symbol, uint64_t notional) noexcept nogil
    ctypedef struct clr_vtab:
        int perm_sym
        int perm_cls
        const int64_t* mk
        const int64_t* k
        const int16_t* cls
        const uint64_t* cap0
        const uint64_t* lim
        const uint64_t* mr
        const uint64_t* d
    ctypedef struct clr_io:
        const int64_t* begin
        const int32_t* count
        const int64_t* wallet
        const int16_t* sym
        const int8_t* mode
        const int64_t* qty
        const int64_t* entry
        const int64_t* margin
        uint8_t* pos_liq
        uint8_t* acct_liq
        int64_t* pos_eq
        int64_t* pos_mm
        int64_t* acct_eq
        int64_t* acct_mm
        const clr_hot* hot
        const void* tabs
        clr_slow_fn slow
        clr_slow_n_fn slow_n
        int64_t strict
        int64_t min_mm
        int iso_entry
    void clr_sweep(int level, int64_t n_acct, const clr_io* io, const clr_vtab* vt, int64_t* counts) noexcept nogil
    void clr_ratios(int64_t n_acct, const clr_io* io, int64_t* pos_ratio, int64_t* acct_ratio) noexcept nogil
    int clr_get_isa() noexcept nogil
    int clr_set_isa(int isa) noexcept nogil
    int clr_isa_available(int isa) noexcept nogil

_ISA_NAMES = ("scalar", "avx512")


def kernel_isa():
    """The instruction set the sweep kernel uses in this process ("avx512" or "scalar"; chosen at first use
    from the CPU, so the extension runs on any x86-64)."""
    return _ISA_NAMES[clr_get_isa()]


def set_kernel_isa(name):
    """Force ``name`` ("scalar" or "avx512") for the following sweeps (tests, benchmarks); ``ValueError`` if
    this CPU cannot run it. Returns the previous one. Both give identical results."""
    cdef int want = _ISA_NAMES.index(name)
    prev = kernel_isa()
    if not clr_isa_available(want):
        raise ValueError(f"{name} is not available on this CPU")
    clr_set_isa(want)
    return prev


ctypedef clr_hot Hot


cdef Hot* _load_hot(const SymTab* tabs, int64_t n) except NULL:
    """The per-symbol hot lines of the C kernel (clearing_kernel.h): brackets 0 and 1 at this mark, with
    the one-multiply form ``MM = (|q|·R_n + D_n) // 1e8`` enabled for ``|q| ≤ qlim`` where it cannot overflow."""
    cdef Hot* hot = <Hot*> malloc(sizeof(Hot) * (n if n > 0 else 1))
    if hot == NULL:
        raise MemoryError()
    cdef int64_t s, b
    cdef u128 lim = (<u128> 1) << 64, r1
    cdef uint64_t R[2]
    cdef uint64_t D[2]
    for s in range(n):
        hot[s].mk = tabs[s].mk
        hot[s].k = tabs[s].k
        hot[s].qcap0 = tabs[s].qcap[0]
        for b in range(2):
            R[b] = <uint64_t> tabs[s].mk * <uint64_t> tabs[s].mmr[b]  # ≤ 2^62 · 1e8: checked below before use
            D[b] = <uint64_t> (E8 - 1) - (<uint64_t> tabs[s].cq[b] * E8U + <uint64_t> tabs[s].cr[b])  # mod 2^64
        hot[s].r0, hot[s].d0, hot[s].r1, hot[s].d1 = R[0], D[0], R[1], D[1]
        # fast path for |q| ≤ qlim: the bracket is 0 or 1 (|q| ≤ qcap_1) and |q|·R_n + D_n < 2^64 (R_0 ≤ R_1)
        r1 = <u128> tabs[s].mk * <u128> tabs[s].mmr[1]
        if r1 >= lim:
            hot[s].qlim = 0  # aq = 0 still takes the fast path: MM(0) = D_0 // 1e8 = 0 since cum_0 = 0
        elif r1 == 0:
            hot[s].qlim = tabs[s].qcap[1]
        else:
            hot[s].qlim = <uint64_t> ((lim - 1 - E8U) // r1)
            if tabs[s].qcap[1] < hot[s].qlim:
                hot[s].qlim = tabs[s].qcap[1]
    return hot


@cython.cdivision(True)
cdef void* _load_vtab(const SymTab* tabs, int64_t n, clr_vtab* vt) except NULL:
    """Tables of the vector path (clearing_kernel.h): per symbol mk, K and a bracket class; per class the tier-0
    cap, the fast-path limit of the notional ``min(cap_1, (2^64 − 1e8) // mmr_1)`` and, per tier 0–1, mmr and
    ``D = 1e8 − 1 − cum_x8`` (mod 2^64). Classes are the distinct tier-0/1 rows when there are ≤ 64 symbols with
    ≤ 8 of them (then everything lives in registers); otherwise every symbol is its own class (gathers)."""
    cdef int64_t ns = n if n > 64 else 64
    cdef int64_t s, c, i, ncls = 0
    cdef int64_t cls_of[64]
    cdef int64_t rep[8]
    cdef bint perm_sym = n <= 64, perm_cls = False
    if perm_sym:
        perm_cls = True
        for s in range(n):
            c = -1
            for i in range(ncls):
                if _same_tiers01(&tabs[s], &tabs[rep[i]]):
                    c = i
                    break
            if c < 0:
                if ncls == 8:
                    perm_cls = False
                    break
                rep[ncls] = s
                c = ncls
                ncls += 1
            cls_of[s] = c
    cdef int64_t nc = 8 if perm_cls else ns
    # layout (qwords): mk[ns] k[ns] cap0[nc] lim[nc] mr[2nc] d[2nc] cls (64 int16 = 16 qwords)
    cdef int64_t total = 2 * ns + 6 * nc + 16
    cdef uint64_t* block = <uint64_t*> malloc(sizeof(uint64_t) * total)
    if block == NULL:
        raise MemoryError()
    cdef int64_t* mk = <int64_t*> block
    cdef int64_t* kk = mk + ns
    cdef uint64_t* cap0 = block + 2 * ns
    cdef uint64_t* lim = cap0 + nc
    cdef uint64_t* mr = lim + nc
    cdef uint64_t* d = mr + 2 * nc
    cdef int16_t* cls = <int16_t*> (d + 2 * nc)
    cdef const SymTab* t
    cdef uint64_t m1
    for i in range(total):
        block[i] = 0
    for s in range(n):
        mk[s] = tabs[s].mk
        kk[s] = tabs[s].k
    for c in range(nc):
        if perm_cls:
            if c >= ncls:
                continue
            t = &tabs[rep[c]]
        else:
            if c >= n:
                continue
            t = &tabs[c]
        cap0[c] = t.cap[0]
        m1 = <uint64_t> t.mmr[1]   # ≥ mmr[0] (derive_brackets rejects decreasing MMR)
        lim[c] = t.cap[1]
        if m1 > 0 and (<uint64_t> 0 - <uint64_t> E8) // m1 < lim[c]:
            lim[c] = (<uint64_t> 0 - <uint64_t> E8) // m1
        for i in range(2):
            mr[2 * c + i] = <uint64_t> t.mmr[i]
            d[2 * c + i] = <uint64_t> (E8 - 1) - (<uint64_t> t.cq[i] * E8U + <uint64_t> t.cr[i])  # mod 2^64
    if perm_cls:
        for s in range(n):
            cls[s] = <int16_t> cls_of[s]
    vt.perm_sym = perm_sym
    vt.perm_cls = perm_cls
    vt.mk = mk
    vt.k = kk
    vt.cls = cls
    vt.cap0 = cap0
    vt.lim = lim
    vt.mr = mr
    vt.d = d
    return block


cdef bint _same_tiers01(const SymTab* a, const SymTab* b) noexcept nogil:
    cdef int i
    for i in range(2):
        if a.cap[i] != b.cap[i] or a.mmr[i] != b.mmr[i] or a.cq[i] != b.cq[i] or a.cr[i] != b.cr[i]:
            return False
    return True


cdef int64_t _slow(const void* tabs, int64_t symbol, uint64_t aq) noexcept nogil:
    return _mm_lots(&(<const SymTab*> tabs)[symbol], aq)


cdef int64_t _slow_n(const void* tabs, int64_t symbol, uint64_t notional) noexcept nogil:
    return _mm_notional(&(<const SymTab*> tabs)[symbol], notional)


@cython.cdivision(True)
cdef SymTab* _load_tables(table, const int64_t[::1] marks) except NULL:
    """Copy the per-symbol tables into C structs and precompute the mark-dependent columns."""
    cdef int64_t n = table.n_symbols, nb = table.nb
    if nb > NBMAX:
        raise ValueError(f"at most {NBMAX} brackets per symbol are supported by the compiled kernel")
    cdef const int64_t[::1] k = table.k_units
    cdef const int64_t[::1] maxp = table.max_price_ticks
    cdef const int32_t[::1] nbr = table.n_brackets
    cdef const int64_t[:, ::1] cap = table.br_lookup_cap
    cdef const int64_t[:, ::1] mmr = table.br_mmr_e8
    cdef const int64_t[:, ::1] cq = table.br_cum_units
    cdef const int64_t[:, ::1] cr = table.br_cum_rem_x8
    cdef SymTab* tabs = <SymTab*> malloc(sizeof(SymTab) * (n if n > 0 else 1))
    if tabs == NULL:
        raise MemoryError()
    cdef int64_t s, b
    cdef u128 r
    for s in range(n):
        tabs[s].k = k[s]
        tabs[s].maxp = maxp[s]
        tabs[s].nb = nbr[s]
        tabs[s].mark = marks[s] if marks is not None else 1
        tabs[s].mk = tabs[s].mark * k[s]
        for b in range(NBMAX):
            if b < nb:
                tabs[s].cap[b] = <uint64_t> cap[s, b]
                tabs[s].mmr[b] = mmr[s, b]
                tabs[s].cq[b] = cq[s, b]
                tabs[s].cr[b] = cr[s, b]
            else:
                tabs[s].cap[b] = <uint64_t> I64MAX
                tabs[s].mmr[b] = mmr[s, nb - 1]
                tabs[s].cq[b] = cq[s, nb - 1]
                tabs[s].cr[b] = cr[s, nb - 1]
            tabs[s].crc[b] = <uint64_t> (E8 - 1 - tabs[s].cr[b])
            tabs[s].qcap[b] = tabs[s].cap[b] // <uint64_t> tabs[s].mk
            r = <u128> tabs[s].mk * <u128> tabs[s].mmr[b]
            tabs[s].rhi[b] = <uint64_t> (r // E8U)
            tabs[s].rlo[b] = <uint64_t> (r % E8U)
    return tabs


# =========================================================================================== position arithmetic
@cython.cdivision(True)
cdef inline int64_t _mm_notional(const SymTab* t, uint64_t notional) noexcept nogil:
    """MM of a notional (≤ 2⁶²): ceil((n·mmr − cum_x8)/1e8) via n = A·1e8 + B; non-negative divisions only."""
    cdef int n = 0
    while notional > t.cap[n]:
        n += 1
    cdef uint64_t A = notional // E8U
    cdef uint64_t B = notional - A * E8U
    cdef uint64_t m = <uint64_t> t.mmr[n]
    return <int64_t> (A * m) - t.cq[n] + <int64_t> ((B * m + t.crc[n]) // E8U)


@cython.cdivision(True)
cdef inline int64_t _mm_lots(const SymTab* t, uint64_t aq) noexcept nogil:
    """MM of |q| lots at the table's mark (same value as ``_mm_notional(aq × mk)``)."""
    # branch-free lower bound over the 16 padded caps (sorted; the padding is ≥ every valid size)
    cdef int n = 0
    n += (aq > t.qcap[n + 7]) << 3
    n += (aq > t.qcap[n + 3]) << 2
    n += (aq > t.qcap[n + 1]) << 1
    n += (aq > t.qcap[n])
    if aq < (<uint64_t> 1 << FASTQ_BITS):
        return <int64_t> (aq * t.rhi[n]) - t.cq[n] + <int64_t> ((aq * t.rlo[n] + t.crc[n]) // E8U)
    return _mm_notional(t, aq * <uint64_t> t.mk)


cdef inline uint64_t _abs(int64_t x) noexcept nogil:
    return <uint64_t> (-x if x < 0 else x)


# =========================================================================================== sweep
def sweep(portfolio, marks_ticks, int level, pos_liq, acct_liq, pos_eq=None, pos_mm=None, pos_ratio=None,
          acct_eq=None, acct_mm=None, acct_ratio=None):
    """Full sweep into preallocated outputs (see ``exchange.clearing.sweep.sweep``). ``level`` 0: flags; 1: + balances
    and MM; 2: + ratios. Returns ``(liquidatable positions, liquidatable accounts)``. Runs without the GIL."""
    table = portfolio.table
    cdef const int64_t[::1] marks = marks_ticks
    cdef const int64_t[::1] begin = portfolio.acct_begin
    cdef const int32_t[::1] count = portfolio.acct_count
    cdef const int64_t[::1] wallet = portfolio.acct_wallet_units
    cdef const int16_t[::1] sym = portfolio.pos_symbol
    cdef const int8_t[::1] mode = portfolio.pos_mode
    cdef const int64_t[::1] qty = portfolio.pos_qty_lots
    cdef const int64_t[::1] entry = portfolio.pos_entry_cost
    cdef const int64_t[::1] margin = portfolio.pos_iso_margin_units
    cdef uint8_t[::1] pl = pos_liq
    cdef uint8_t[::1] al = acct_liq
    cdef int64_t[::1] pe, pm, pr, ae, am, ar
    cdef int64_t* ppe = NULL
    cdef int64_t* ppm = NULL
    cdef int64_t* ppr = NULL
    cdef int64_t* pae = NULL
    cdef int64_t* pam = NULL
    cdef int64_t* par = NULL
    cdef int64_t n_acct = begin.shape[0]
    cdef int64_t counts[2]
    counts[0] = 0
    counts[1] = 0
    if pl.shape[0] < sym.shape[0] or al.shape[0] < n_acct:
        raise ValueError("output arrays too short")
    if level >= 1:
        pe = pos_eq; pm = pos_mm; ae = acct_eq; am = acct_mm
        if pe.shape[0] < sym.shape[0] or pm.shape[0] < sym.shape[0] or ae.shape[0] < n_acct or am.shape[0] < n_acct:
            raise ValueError("output arrays too short")
        if sym.shape[0]:
            ppe = &pe[0]; ppm = &pm[0]
        if n_acct:
            pae = &ae[0]; pam = &am[0]
    if level >= 2:
        pr = pos_ratio; ar = acct_ratio
        if pr.shape[0] < sym.shape[0] or ar.shape[0] < n_acct:
            raise ValueError("output arrays too short")
        if sym.shape[0]:
            ppr = &pr[0]
        if n_acct:
            par = &ar[0]
    if n_acct == 0:
        return 0, 0
    cdef SymTab* tabs = _load_tables(table, marks)
    cdef Hot* hot = NULL
    cdef void* vblock = NULL
    cdef clr_vtab vt
    cdef clr_io io
    try:
        hot = _load_hot(tabs, table.n_symbols)
        vblock = _load_vtab(tabs, table.n_symbols, &vt)
    except MemoryError:
        free(tabs)
        free(hot)
        raise
    cdef const int16_t* psym = &sym[0] if sym.shape[0] else NULL
    cdef const int8_t* pmode = &mode[0] if sym.shape[0] else NULL
    cdef const int64_t* pqty = &qty[0] if sym.shape[0] else NULL
    cdef const int64_t* pent = &entry[0] if sym.shape[0] else NULL
    cdef const int64_t* pmar = &margin[0] if sym.shape[0] else NULL
    cdef uint8_t* ppl = &pl[0] if pl.shape[0] else NULL
    io.begin = &begin[0]; io.count = &count[0]; io.wallet = &wallet[0]
    io.sym = psym; io.mode = pmode; io.qty = pqty; io.entry = pent; io.margin = pmar
    io.pos_liq = ppl; io.acct_liq = &al[0]
    io.pos_eq = ppe; io.pos_mm = ppm; io.acct_eq = pae; io.acct_mm = pam
    io.hot = hot; io.tabs = tabs; io.slow = _slow; io.slow_n = _slow_n
    io.strict = table.strict; io.min_mm = table.min_mm; io.iso_entry = table.iso_entry
    try:
        with nogil:
            clr_sweep(1 if level >= 1 else 0, n_acct, &io, &vt, counts)
            if level >= 2:
                clr_ratios(n_acct, &io, ppr, par)
    finally:
        free(tabs)
        free(hot)
        free(vblock)
    return counts[0], counts[1]


# =========================================================================================== index: search
cdef struct Ctx:
    const SymTab* t
    int nlegs
    int64_t q[LEGMAX]
    int64_t e[LEGMAX]
    int64_t balance       # isolated margin (isolated predicate)
    i128 c8               # band threshold ×1e8 (band predicate)
    int64_t mm_fixed      # the isolated MM when it is charged on the entry value (iso_entry), else −1
    int64_t strict        # the trigger (exchange.accounts.margin.trigger_terms)
    int64_t min_mm

ctypedef bint (*pred_t)(const Ctx* c, int64_t p) noexcept nogil


cdef bint _iso_liq(const Ctx* c, int64_t p) noexcept nogil:
    """Exact integer rule at mark p: balance + (p·q − e)·K + strict ≤ MM and MM ≥ min_mm, MM = MM(|q|·p·K)
    or the fixed entry-value MM."""
    cdef const SymTab* t = c.t
    cdef int64_t q = c.q[0]
    cdef int64_t mm = c.mm_fixed if c.mm_fixed >= 0 else _mm_notional(t, _abs(q) * <uint64_t> p * <uint64_t> t.k)
    return c.balance + (p * q - c.e[0]) * t.k + c.strict <= mm and mm >= c.min_mm


cdef i128 _h8(const Ctx* c, int64_t p) noexcept nogil:
    """10⁸ × (Σ_legs uPnL(p) − Σ_legs MM_exact(p) − legs): a concave lower bound of 10⁸·Σ(uPnL − MM)."""
    cdef const SymTab* t = c.t
    cdef i128 total = 0
    cdef int i, n
    cdef uint64_t notional
    cdef int64_t q
    for i in range(c.nlegs):
        q = c.q[i]
        notional = _abs(q) * <uint64_t> p * <uint64_t> t.k
        n = 0
        while notional > t.cap[n]:
            n += 1
        total += <i128> E8 * <i128> ((p * q - c.e[i]) * t.k) - <i128> notional * <i128> t.mmr[n] \
            + <i128> t.cq[n] * E8 + t.cr[n] - E8
    return total


cdef bint _band_ok(const Ctx* c, int64_t p) noexcept nogil:
    return _h8(c, p) >= c.c8


cdef int64_t _half(int64_t a, int64_t b) noexcept nogil:
    """A point strictly between a and b (|a − b| ≥ 2), rounded toward a; no signed division."""
    cdef int64_t d = b - a
    if d > 0:
        return a + <int64_t> (<uint64_t> d >> 1)
    return a - <int64_t> (<uint64_t> (-d) >> 1)


cdef int64_t _boundary(pred_t pred, const Ctx* c, int64_t good, int64_t bad, int64_t guess) noexcept nogil:
    """Last point where ``pred`` holds, walking from ``good`` (pred true) to ``bad`` (pred false); ``pred``
    must be monotone on that segment. ``guess`` only seeds an exponential search (any value is safe)."""
    cdef int64_t d = 1 if bad > good else -1
    cdef int64_t step = 1, p
    if (guess - good) * d > 0 and (bad - guess) * d > 0:
        if pred(c, guess):
            good = guess
            while True:
                p = good + d * step
                if (bad - p) * d <= 0:
                    break
                if pred(c, p):
                    good = p
                    step *= 2
                else:
                    bad = p
                    break
        else:
            bad = guess
            while True:
                p = bad - d * step
                if (p - good) * d <= 0:
                    break
                if pred(c, p):
                    good = p
                    break
                bad = p
                step *= 2
    while (bad - good) * d > 1:
        p = _half(good, bad)
        if pred(c, p):
            good = p
        else:
            bad = p
    return good


@cython.cdivision(True)
cdef int64_t _guess(const Ctx* c, double target_shift, int64_t p0) noexcept nogil:
    """Float seed for the search: p0 + target_shift / slope, slope of the balance in p0's bracket."""
    cdef const SymTab* t = c.t
    cdef double slope = 0.0, g
    cdef int i, n
    cdef uint64_t notional
    for i in range(c.nlegs):
        notional = _abs(c.q[i]) * <uint64_t> p0 * <uint64_t> t.k
        n = 0
        while notional > t.cap[n]:
            n += 1
        slope += <double> t.k * (<double> c.q[i] - <double> _abs(c.q[i]) * <double> t.mmr[n] * 1e-8)
    if slope == 0.0:
        return -1
    g = <double> p0 + target_shift / slope
    if not isfinite(g) or g < -4e18 or g > 4e18:
        return -1
    return <int64_t> g


# =========================================================================================== index: isolated
def iso_entries(portfolio, marks_ticks, slots, out_sym, out_dir, out_v, out_key, out_liq):
    """Liquidation thresholds of isolated positions (one entry each at most).

    For each slot in ``slots``: if it is an open isolated position, its exact liquidation tick T (long:
    ``max{P : balance ≤ MM}``, entry DOWN = fires when mark ≤ T; short: ``min{...}``, entry UP), clamped to
    ``[1, max_price]`` (no entry if no tick in range liquidates it), by the table's trigger and with the MM of
    the entry value when ``iso_entry``. ``out_liq[i]`` = liquidatable at the current mark. Returns the number
    of entries written (key = slot × 2)."""
    table = portfolio.table
    cdef const int64_t[::1] marks = marks_ticks
    cdef const int64_t[::1] sl = slots
    cdef const int16_t[::1] sym = portfolio.pos_symbol
    cdef const int8_t[::1] mode = portfolio.pos_mode
    cdef const int64_t[::1] qty = portfolio.pos_qty_lots
    cdef const int64_t[::1] entry = portfolio.pos_entry_cost
    cdef const int64_t[::1] margin = portfolio.pos_iso_margin_units
    cdef const int32_t[::1] acct = portfolio.pos_account
    cdef int64_t[::1] osym = out_sym, ov = out_v, okey = out_key
    cdef int8_t[::1] odir = out_dir
    cdef uint8_t[::1] oliq = out_liq
    cdef int64_t n = sl.shape[0], i, j, s, q, maxp, p0, T, g, w = 0
    cdef const SymTab* t
    cdef Ctx c
    cdef bint iso_entry = table.iso_entry
    c.strict = table.strict
    c.min_mm = table.min_mm
    if osym.shape[0] < n or ov.shape[0] < n or okey.shape[0] < n or odir.shape[0] < n or oliq.shape[0] < n:
        raise ValueError("output arrays too short")
    cdef SymTab* tabs = _load_tables(table, marks)
    try:
        with nogil:
            for i in range(n):
                j = sl[i]
                oliq[i] = 0
                if j < 0 or j >= qty.shape[0] or acct[j] < 0 or mode[j] != ISOLATED or qty[j] == 0:
                    continue
                s = sym[j]
                t = &tabs[s]
                q = qty[j]
                c.t = t
                c.nlegs = 1
                c.q[0] = q
                c.e[0] = entry[j]
                c.balance = margin[j]
                c.mm_fixed = _mm_notional(t, _abs(entry[j]) * <uint64_t> t.k) if iso_entry else -1
                maxp = t.maxp
                p0 = t.mark
                oliq[i] = _iso_liq(&c, p0)
                if q > 0:
                    if not _iso_liq(&c, 1):
                        continue
                    if _iso_liq(&c, maxp):
                        T = maxp
                    else:
                        g = _guess(&c, -<double> (c.balance + (p0 * q - c.e[0]) * t.k - _mm_lots(t, _abs(q))), p0)
                        T = _boundary(_iso_liq, &c, 1, maxp, g)
                    odir[w] = DIR_DOWN
                else:
                    if not _iso_liq(&c, maxp):
                        continue
                    if _iso_liq(&c, 1):
                        T = 1
                    else:
                        g = _guess(&c, -<double> (c.balance + (p0 * q - c.e[0]) * t.k - _mm_lots(t, _abs(q))), p0)
                        T = _boundary(_iso_liq, &c, maxp, 1, g)
                    odir[w] = DIR_UP
                osym[w] = s
                ov[w] = T
                okey[w] = j * 2
                w += 1
    finally:
        free(tabs)
    return w


# =========================================================================================== index: cross bands
@cython.cdivision(True)
cdef inline int64_t _share(int64_t slack, uint64_t w, uint64_t total) noexcept nogil:
    """floor(slack × w / total) for slack ≥ 0, w ≤ total (128-bit)."""
    return <int64_t> ((<u128> slack * w) // total)


def cross_entries(portfolio, marks_ticks, accounts, out_sym, out_dir, out_v, out_key, out_liq):
    """Safe price bands of the cross parts of ``accounts`` (see ``exchange.liquidation.index``).

    Per account: slack ``H = wallet + Σ_cross (uPnL − MM)`` at the current marks; ``out_liq[i] = size ≠ 0 and
    H + strict ≤ 0 and Σ MM ≥ min_mm`` (the exact liquidation rule of the table's trigger). If liquidatable, one DOWN entry with value INT64_MAX per cross
    symbol (fires on any mark). Otherwise symbol s gets budget ``b_s = floor((H − 1) × w_s / Σw)``
    (w = gross notional) and the band ``{P ∈ [1, max_price] : h_s(P) ≥ g_s − b_s}``, h_s the concave lower
    bound of its uPnL − MM (see ``_h8``); entries DOWN at ``lo − 1`` if ``lo > 1`` and UP at ``hi + 1`` if
    ``hi < max_price`` (a band not containing the mark: the INT64_MAX entry). Key = account × 2 + 1.
    Returns the number of entries written; raises ``ValueError`` for more than 8 legs of one symbol."""
    table = portfolio.table
    cdef const int64_t[::1] marks = marks_ticks
    cdef const int64_t[::1] accs = accounts
    cdef const int64_t[::1] begin = portfolio.acct_begin
    cdef const int32_t[::1] count = portfolio.acct_count
    cdef const int64_t[::1] wallet = portfolio.acct_wallet_units
    cdef const int16_t[::1] sym = portfolio.pos_symbol
    cdef const int8_t[::1] mode = portfolio.pos_mode
    cdef const int64_t[::1] qty = portfolio.pos_qty_lots
    cdef const int64_t[::1] entry = portfolio.pos_entry_cost
    cdef int64_t[::1] osym = out_sym, ov = out_v, okey = out_key
    cdef int8_t[::1] odir = out_dir
    cdef uint8_t[::1] oliq = out_liq
    cdef int64_t n = accs.shape[0], i, a, b, e, j, jj, s, q, H, mmsum, size, w = 0, cap_out = ov.shape[0]
    cdef int64_t strict = table.strict, min_mm = table.min_mm
    cdef int64_t lo, hi, p0, maxp, g, bs, gs, err = 0
    cdef uint64_t W, ws
    cdef bint seen
    cdef const SymTab* t
    cdef Ctx c
    cdef i128 h0
    if osym.shape[0] < cap_out or okey.shape[0] < cap_out or odir.shape[0] < cap_out or oliq.shape[0] < n:
        raise ValueError("output arrays too short")
    cdef SymTab* tabs = _load_tables(table, marks)
    try:
        with nogil:
            for i in range(n):
                a = accs[i]
                oliq[i] = 0
                if a < 0 or a >= begin.shape[0]:
                    continue
                b = begin[a]
                e = b + count[a]
                H = wallet[a]
                mmsum = 0
                size = 0
                W = 0
                for j in range(b, e):
                    if mode[j] == ISOLATED or qty[j] == 0:
                        continue
                    t = &tabs[sym[j]]
                    q = qty[j]
                    g = _mm_lots(t, _abs(q))
                    H += q * t.mk - entry[j] * t.k - g
                    mmsum += g
                    W += _abs(q) * <uint64_t> t.mk
                    size = 1
                if not size:
                    continue
                if w + 2 * (e - b) > cap_out:
                    err = 2
                    break
                oliq[i] = H + strict <= 0 and mmsum >= min_mm  # the trigger (balance = H + Σ MM)
                for j in range(b, e):
                    if mode[j] == ISOLATED or qty[j] == 0:
                        continue
                    s = sym[j]
                    seen = False
                    for jj in range(b, j):
                        if sym[jj] == s and mode[jj] != ISOLATED and qty[jj] != 0:
                            seen = True
                            break
                    if seen:
                        continue
                    t = &tabs[s]
                    if H <= 0:
                        osym[w] = s; odir[w] = DIR_DOWN; ov[w] = I64MAX; okey[w] = 2 * a + 1
                        w += 1
                        continue
                    # legs of symbol s, their current value g_s and weight w_s
                    c.t = t
                    c.nlegs = 0
                    gs = 0
                    ws = 0
                    for jj in range(j, e):
                        if sym[jj] == s and mode[jj] != ISOLATED and qty[jj] != 0:
                            if c.nlegs == LEGMAX:
                                err = 1
                                break
                            q = qty[jj]
                            c.q[c.nlegs] = q
                            c.e[c.nlegs] = entry[jj]
                            c.nlegs += 1
                            gs += q * t.mk - entry[jj] * t.k - _mm_lots(t, _abs(q))
                            ws += _abs(q) * <uint64_t> t.mk
                    if err:
                        break
                    bs = _share(H - 1, ws, W)
                    c.c8 = <i128> E8 * <i128> (gs - bs)
                    p0 = t.mark
                    maxp = t.maxp
                    h0 = _h8(&c, p0)
                    if h0 < c.c8:
                        osym[w] = s; odir[w] = DIR_DOWN; ov[w] = I64MAX; okey[w] = 2 * a + 1
                        w += 1
                        continue
                    if _band_ok(&c, 1):
                        lo = 1
                    else:
                        g = _guess(&c, -<double> (h0 - c.c8) * 1e-8, p0)
                        lo = _boundary(_band_ok, &c, p0, 1, g)
                        osym[w] = s; odir[w] = DIR_DOWN; ov[w] = lo - 1; okey[w] = 2 * a + 1
                        w += 1
                    if not _band_ok(&c, maxp):
                        g = _guess(&c, -<double> (h0 - c.c8) * 1e-8, p0)
                        hi = _boundary(_band_ok, &c, p0, maxp, g)
                        osym[w] = s; odir[w] = DIR_UP; ov[w] = hi + 1; okey[w] = 2 * a + 1
                        w += 1
                if err:
                    break
    finally:
        free(tabs)
    if err == 1:
        raise ValueError(f"more than {LEGMAX} cross positions of one symbol in one account")
    if err == 2:
        raise ValueError("output arrays too short")
    return w
