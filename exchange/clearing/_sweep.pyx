# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=False
"""Compiled clearing kernel: the full mark-to-market sweep, the liquidation and warning index entries, and the
risk monitor's writer of touched accounts (mirror rows and both indexes' entries).

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

Sections: tables, position arithmetic, sweep, index search, index entries (per part: isolated thresholds,
cross bands, warning bands), entry batches (the ``*_entries`` functions), the monitor's writer.
"""
cimport cython
from libc.stdint cimport INT64_MIN, int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, qsort
from libc.string cimport memcpy
from libc.math cimport isfinite
from exchange._records cimport untrack, untrack_all
from exchange.accounts._ledger cimport (Account as AccountRec, Position as PositionRec, SymbolSettings as SettingsRec,
                                        check_layout)
from exchange.accounts._margin cimport settings_of

import numpy as np

from exchange.accounts.ledger import EMPTY  # the shared empty settings (Ledger.settings, settings_of)

check_layout()  # settings_of and the monitor's writer read the ledger's records through their slots

cdef extern from "clearing_int128.h":
    ctypedef long long i128 "clr_i128"
    ctypedef unsigned long long u128 "clr_u128"

cdef enum:
    NBMAX = 16          # brackets per symbol
    LEGMAX = 8          # positions of one symbol in one account's cross part
    SYMBOL_WORDS = 4    # 64-bit words of the distinct-legs test's bit set (_distinct_legs): symbol indexes < 256
    KEY_WORDS = 16      # 64-bit words of the writer's slot test (symbol index × 4 + position side < 1,024)
    SCAN_SLOTS = 4      # up to this many slots in an account's block, the per-key and per-leg scans run as they are
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
cdef struct Lines:        # a convex bound of MM on the table's caps (exchange.accounts.margin.convex_bounds)
    int64_t mmr[NBMAX]
    int64_t cq[NBMAX]     # cum_x8 // 1e8
    int64_t cr[NBMAX]     # cum_x8 % 1e8


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
    Lines upper           # the index bands' bounds of MM from above and below (the rows when convex)
    Lines lower


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
    cdef const int64_t[:, ::1] umr = table.br_upper_mmr_e8
    cdef const int64_t[:, ::1] ucq = table.br_upper_cum_units
    cdef const int64_t[:, ::1] ucr = table.br_upper_cum_rem_x8
    cdef const int64_t[:, ::1] lmr = table.br_lower_mmr_e8
    cdef const int64_t[:, ::1] lcq = table.br_lower_cum_units
    cdef const int64_t[:, ::1] lcr = table.br_lower_cum_rem_x8
    cdef SymTab* tabs = <SymTab*> malloc(sizeof(SymTab) * (n if n > 0 else 1))
    if tabs == NULL:
        raise MemoryError()
    cdef int64_t s, b, i
    for s in range(n):
        tabs[s].k = k[s]
        tabs[s].maxp = maxp[s]
        tabs[s].nb = nbr[s]
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
            i = b if b < nb else nb - 1
            tabs[s].upper.mmr[b], tabs[s].upper.cq[b], tabs[s].upper.cr[b] = umr[s, i], ucq[s, i], ucr[s, i]
            tabs[s].lower.mmr[b], tabs[s].lower.cq[b], tabs[s].lower.cr[b] = lmr[s, i], lcq[s, i], lcr[s, i]
        _set_mark(&tabs[s], marks[s] if marks is not None else 1)
    return tabs


@cython.cdivision(True)
cdef void _set_mark(SymTab* t, int64_t mark) noexcept nogil:
    """The mark-dependent columns of one symbol's table (mark ≥ 1)."""
    cdef int b
    cdef u128 r
    t.mark = mark
    t.mk = mark * t.k
    for b in range(NBMAX):
        t.qcap[b] = t.cap[b] // <uint64_t> t.mk
        r = <u128> t.mk * <u128> t.mmr[b]
        t.rhi[b] = <uint64_t> (r // E8U)
        t.rlo[b] = <uint64_t> (r % E8U)


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
    const Lines* lines    # the line sums' MM: t.upper (the lower bounds h) or t.lower (the warning sum u)
    int nlegs
    int64_t q[LEGMAX]
    int64_t e[LEGMAX]
    int64_t balance       # isolated margin (isolated predicate)
    i128 c8               # threshold of the line-sum predicates
    i128 cu               # uPnL factor of the line sums: 1e8 (liquidation bands) or c = level − 1 (warning bands)
    i128 per_leg          # added per leg: −1e8 (the lower bounds h) or 0 (the warning sum u)
    int64_t maxp
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


cdef inline i128 _exact8(const SymTab* t, const Lines* l, uint64_t notional) noexcept nogil:
    """10⁸ × the exact (unrounded) MM of a notional under the convex bound ``l`` (on t's caps): notional·mmr −
    cum_x8 of its bracket."""
    cdef int n = 0
    while notional > t.cap[n]:
        n += 1
    return <i128> notional * <i128> l.mmr[n] - (<i128> l.cq[n] * E8 + l.cr[n])


cdef i128 _line_sum(const Ctx* c, int64_t p) noexcept nogil:
    """Σ_legs (cu·uPnL(p) − 10⁸·MM_exact(p) + per_leg), MM of c.lines: concave in p (a convex bound). cu = 10⁸,
    per_leg = −10⁸: 10⁸·h of the liquidation bands; cu = c: the warning bands' h (per_leg −10⁸) and u (per_leg 0)."""
    cdef const SymTab* t = c.t
    cdef i128 total = 0
    cdef int i
    cdef int64_t q
    for i in range(c.nlegs):
        q = c.q[i]
        total += c.cu * <i128> ((p * q - c.e[i]) * t.k) - _exact8(t, c.lines, _abs(q) * <uint64_t> p * <uint64_t> t.k) \
            + c.per_leg
    return total


cdef bint _band_ok(const Ctx* c, int64_t p) noexcept nogil:
    return _line_sum(c, p) >= c.c8


cdef bint _at_most(const Ctx* c, int64_t p) noexcept nogil:
    return _line_sum(c, p) <= c.c8


cdef bint _rising(const Ctx* c, int64_t p) noexcept nogil:
    """Whether the (concave) line sum still rises after p inside the price range."""
    return p < c.maxp and _line_sum(c, p + 1) > _line_sum(c, p)


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
    """Float seed for the search: p0 + target_shift / slope, slope of (line sum)/10⁸ in p0's bracket."""
    cdef const SymTab* t = c.t
    cdef double slope = 0.0, g, cu = <double> c.cu * 1e-8
    cdef int i, n
    cdef uint64_t notional
    for i in range(c.nlegs):
        notional = _abs(c.q[i]) * <uint64_t> p0 * <uint64_t> t.k
        n = 0
        while notional > t.cap[n]:
            n += 1
        slope += <double> t.k * (cu * <double> c.q[i] - <double> _abs(c.q[i]) * <double> c.lines.mmr[n] * 1e-8)
    if slope == 0.0:
        return -1
    g = <double> p0 + target_shift / slope
    if not isfinite(g) or g < -4e18 or g > 4e18:
        return -1
    return <int64_t> g


# =========================================================================================== index: entries
cdef struct Out:
    int64_t* sym
    int8_t* dir
    int64_t* v
    int64_t* key
    int64_t w             # entries written (callers guarantee the room)


cdef struct Rows:
    const int64_t* begin
    const int32_t* count
    const int64_t* wallet
    const int32_t* acct
    const int16_t* sym
    const int8_t* mode
    const int64_t* qty
    const int64_t* entry
    const int64_t* margin


cdef inline void _emit(Out* o, int64_t s, int d, int64_t v, int64_t key) noexcept nogil:
    o.sym[o.w] = s
    o.dir[o.w] = d
    o.v[o.w] = v
    o.key[o.w] = key
    o.w += 1


cdef inline bint _cross_leg(const Rows* r, int64_t j) noexcept nogil:
    return r.mode[j] != ISOLATED and r.qty[j] != 0


cdef inline bint _first_of_symbol(const Rows* r, int64_t b, int64_t j) noexcept nogil:
    """Whether cross leg j is the first cross leg of its symbol in [b, j]."""
    cdef int64_t jj
    for jj in range(b, j):
        if r.sym[jj] == r.sym[j] and _cross_leg(r, jj):
            return False
    return True


cdef inline bint _distinct_legs(const Rows* r, int64_t b, int64_t e) noexcept nogil:
    """Whether the cross legs of slots [b, e) are of distinct symbols, all below 64 × SYMBOL_WORDS (a bit set on the
    stack): then every cross leg is the first and only one of its symbol, and the per-symbol scans
    (:func:`_first_of_symbol`, a symbol's legs) reduce to the leg itself. False also when a symbol is beyond
    the set (the scans then run as they are). O(legs)."""
    cdef uint64_t seen[SYMBOL_WORDS]
    cdef int64_t j, s
    cdef int i
    for i in range(SYMBOL_WORDS):
        seen[i] = 0
    for j in range(b, e):
        if not _cross_leg(r, j):
            continue
        s = r.sym[j]
        if s >= 64 * SYMBOL_WORDS or seen[s >> 6] & ((<uint64_t> 1) << (s & 63)):
            return False
        seen[s >> 6] |= (<uint64_t> 1) << (s & 63)
    return True


cdef void _band(Ctx* c, int64_t s, int64_t key, Out* o) noexcept nogil:
    """Entries of the band ``{P : line sum ≥ c8}`` (an interval: the sum is concave) around the mark: DOWN at
    lo − 1 and UP at hi + 1 inside the price range; the always-firing entry when the mark is outside it."""
    cdef const SymTab* t = c.t
    cdef int64_t p0 = t.mark, g, lo, hi
    cdef i128 h0 = _line_sum(c, p0)
    c.maxp = t.maxp
    if h0 < c.c8:
        _emit(o, s, DIR_DOWN, I64MAX, key)
        return
    if not _band_ok(c, 1):
        g = _guess(c, -<double> (h0 - c.c8) * 1e-8, p0)
        lo = _boundary(_band_ok, c, p0, 1, g)
        _emit(o, s, DIR_DOWN, lo - 1, key)
    if not _band_ok(c, t.maxp):
        g = _guess(c, -<double> (h0 - c.c8) * 1e-8, p0)
        hi = _boundary(_band_ok, c, p0, t.maxp, g)
        _emit(o, s, DIR_UP, hi + 1, key)


cdef void _run_at_most(Ctx* c, int64_t s, int64_t key, Out* o) noexcept nogil:
    """Entry of the run of prices around the mark on which the line sum stays ``≤ c8`` (it holds at the mark).
    The sum is concave, so the run ends on the side of its maximum only: past the mark toward the top (the
    first maximum in that direction), the last price still at most c8. No entry when the top itself is."""
    cdef const SymTab* t = c.t
    cdef int64_t p0 = t.mark, top
    c.maxp = t.maxp
    if _rising(c, p0):
        top = _boundary(_rising, c, p0, t.maxp, -1) + 1
        if not _at_most(c, top):
            _emit(o, s, DIR_UP, _boundary(_at_most, c, p0, top, -1) + 1, key)
    else:
        top = _boundary(_rising, c, 1, p0, -1) + 1 if _rising(c, 1) else 1
        if not _at_most(c, top):
            _emit(o, s, DIR_DOWN, _boundary(_at_most, c, p0, top, -1) - 1, key)


cdef bint _iso_part(const SymTab* tabs, const Rows* r, int64_t j, bint iso_entry, int64_t strict, int64_t min_mm,
                    Out* o) noexcept nogil:
    """Liquidation entry of the open isolated slot j (at most one, key j·2): its exact liquidation tick T (long:
    ``max{P : liquidatable}``, DOWN; short: ``min{...}``, UP) in ``[1, max_price]``, none if no tick there
    liquidates it. Returns whether it is liquidatable at the mark. O(log max_price)."""
    cdef const SymTab* t = &tabs[r.sym[j]]
    cdef int64_t q = r.qty[j], p0 = t.mark, maxp = t.maxp, T, g
    cdef Ctx c
    c.t = t
    c.lines = &t.upper  # (only the search's seed reads it)
    c.nlegs = 1
    c.q[0] = q
    c.e[0] = r.entry[j]
    c.balance = r.margin[j]
    c.cu = E8
    c.strict = strict
    c.min_mm = min_mm
    c.mm_fixed = _mm_notional(t, _abs(r.entry[j]) * <uint64_t> t.k) if iso_entry else -1
    cdef bint liq = _iso_liq(&c, p0)
    if q > 0:
        if not _iso_liq(&c, 1):
            return liq
        if _iso_liq(&c, maxp):
            T = maxp
        else:
            g = _guess(&c, -<double> (c.balance + (p0 * q - c.e[0]) * t.k - _mm_lots(t, _abs(q))), p0)
            T = _boundary(_iso_liq, &c, 1, maxp, g)
        _emit(o, r.sym[j], DIR_DOWN, T, j * 2)
    else:
        if not _iso_liq(&c, maxp):
            return liq
        if _iso_liq(&c, 1):
            T = 1
        else:
            g = _guess(&c, -<double> (c.balance + (p0 * q - c.e[0]) * t.k - _mm_lots(t, _abs(q))), p0)
            T = _boundary(_iso_liq, &c, maxp, 1, g)
        _emit(o, r.sym[j], DIR_UP, T, j * 2)
    return liq


@cython.cdivision(True)
cdef inline int64_t _share(int64_t slack, uint64_t w, uint64_t total) noexcept nogil:
    """floor(slack × w / total) for slack ≥ 0, w ≤ total (128-bit)."""
    return <int64_t> ((<u128> slack * w) // total)


@cython.cdivision(True)
cdef inline i128 _share128(i128 slack, uint64_t w, uint64_t total) noexcept nogil:
    """floor(slack × w / total) for 0 ≤ slack < 2¹²⁶, w ≤ total < 2⁶⁴, without overflow."""
    cdef u128 x = <u128> slack
    return <i128> ((x // total) * w + ((x % total) * w) // total)


cdef int _cross_part(const SymTab* tabs, const Rows* r, int64_t a, int64_t strict, int64_t min_mm,
                     Out* o) noexcept nogil:
    """Safe bands of account a's cross part (module docstring of exchange.liquidation.index; key a·2 + 1), at
    most two entries per cross symbol. Returns liquidatable now (0/1), −1 for more than LEGMAX legs of a symbol.
    O(legs + symbols · log max_price) when no two legs share a symbol (:func:`_distinct_legs`; asked past
    SCAN_SLOTS slots), else O(legs² + symbols · log max_price)."""
    cdef int64_t b = r.begin[a], e = b + r.count[a], j, jj, q, H = r.wallet[a], mmsum = 0, g, gs, key = 2 * a + 1
    cdef uint64_t W = 0, ws
    cdef bint size = False
    cdef const SymTab* t
    cdef Ctx c
    for j in range(b, e):
        if not _cross_leg(r, j):
            continue
        t = &tabs[r.sym[j]]
        q = r.qty[j]
        g = _mm_lots(t, _abs(q))
        H += q * t.mk - r.entry[j] * t.k - g
        mmsum += g
        W += _abs(q) * <uint64_t> t.mk
        size = True
    if not size:
        return 0
    cdef int liq = H + strict <= 0 and mmsum >= min_mm  # the trigger (balance = H + Σ MM)
    cdef bint distinct = e - b > SCAN_SLOTS and _distinct_legs(r, b, e)  # (then a symbol's legs are the leg itself)
    c.cu = E8
    c.per_leg = -E8
    for j in range(b, e):
        if not _cross_leg(r, j) or not (distinct or _first_of_symbol(r, b, j)):
            continue
        t = &tabs[r.sym[j]]
        if H <= 0:
            _emit(o, r.sym[j], DIR_DOWN, I64MAX, key)
            continue
        c.t = t
        c.lines = &t.upper
        c.nlegs = 0
        gs = 0
        ws = 0
        for jj in range(j, j + 1 if distinct else e):
            if r.sym[jj] == r.sym[j] and _cross_leg(r, jj):
                if c.nlegs == LEGMAX:
                    return -1
                q = r.qty[jj]
                c.q[c.nlegs] = q
                c.e[c.nlegs] = r.entry[jj]
                c.nlegs += 1
                gs += q * t.mk - r.entry[jj] * t.k - _mm_lots(t, _abs(q))
                ws += _abs(q) * <uint64_t> t.mk
        c.c8 = <i128> E8 * <i128> (gs - _share(H - 1, ws, W))
        _band(&c, r.sym[j], key, o)
    return liq


cdef struct WarnSums:
    int64_t balance       # base + Σ uPnL
    i128 mm               # Σ MM (rounded up)
    i128 g                # Σ (c·uPnL − 10⁸·MM)
    i128 u                # Σ (c·uPnL − 10⁸·MM_exact)
    uint64_t w            # Σ notional


cdef inline void _warn_leg(const SymTab* t, int64_t q, int64_t e, i128 cu, WarnSums* z) noexcept nogil:
    """Add one leg at the table's mark to the warning sums."""
    cdef uint64_t notional = _abs(q) * <uint64_t> t.mk
    cdef int64_t upnl = q * t.mk - e * t.k, mm = _mm_lots(t, _abs(q))
    z.balance += upnl
    z.mm += mm
    z.g += cu * upnl - <i128> E8 * mm
    z.u += cu * upnl - _exact8(t, &t.lower, notional)
    z.w += notional


cdef int _warn_part(const SymTab* tabs, const Rows* r, int64_t c_lvl, int64_t base, int64_t b, int64_t e,
                    bint cross, int64_t key, Out* o) noexcept nogil:
    """Warning-level entries of one part (module docstring of exchange.liquidation.index, "Warning level"):
    the cross legs of slots [b, e) (``cross``) or the isolated slot b (e = b + 1), over ``base`` (the wallet or
    the isolated margin); at most two entries per symbol. Returns warned now (0/1; 0 without legs), −1 for more
    than LEGMAX legs of one symbol. O(legs + symbols · log max_price) when no two cross legs share a symbol
    (:func:`_distinct_legs`; asked past SCAN_SLOTS slots), else O(legs² + symbols · log max_price)."""
    cdef WarnSums z, zs
    cdef int64_t j, jj
    cdef i128 cu = c_lvl, slack
    cdef const SymTab* t
    cdef Ctx c
    z.balance, z.mm, z.g, z.u, z.w = base, 0, 0, 0, 0
    for j in range(b, e):
        if not cross or _cross_leg(r, j):
            _warn_leg(&tabs[r.sym[j]], r.qty[j], r.entry[j], cu, &z)
    if z.w == 0:
        return 0
    cdef bint warned = z.balance <= 0 or cu * z.balance < <i128> E8 * z.mm
    slack = cu * base + (z.u if warned else z.g)  # −D, or F ≥ 0
    c.cu = cu
    cdef bint distinct = not cross or e - b > SCAN_SLOTS and _distinct_legs(r, b, e)  # (an isolated part: one slot)
    for j in range(b, e):
        if cross and (not _cross_leg(r, j) or not (distinct or _first_of_symbol(r, b, j))):
            continue
        t = &tabs[r.sym[j]]
        if warned and slack >= 0:
            _emit(o, r.sym[j], DIR_DOWN, I64MAX, key)
            continue
        c.t = t
        c.nlegs = 0
        zs.balance, zs.mm, zs.g, zs.u, zs.w = 0, 0, 0, 0, 0
        for jj in range(j, j + 1 if distinct else e):
            if r.sym[jj] == r.sym[j] and (not cross or _cross_leg(r, jj)):
                if c.nlegs == LEGMAX:
                    return -1
                c.q[c.nlegs] = r.qty[jj]
                c.e[c.nlegs] = r.entry[jj]
                c.nlegs += 1
                _warn_leg(t, r.qty[jj], r.entry[jj], cu, &zs)
        if not warned:  # band {P : h_s(P) ≥ g_s − b_s}
            c.lines = &t.upper
            c.per_leg = -E8
            c.c8 = zs.g - _share128(slack, zs.w, z.w)
            _band(&c, r.sym[j], key, o)
        else:  # the run around the mark where u_s(P) ≤ u_s + b_s
            c.lines = &t.lower
            c.per_leg = 0
            c.c8 = zs.u + _share128(-slack - 1, zs.w, z.w)
            _run_at_most(&c, r.sym[j], key, o)
    return warned


@cython.cdivision(True)
cdef inline i128 _floordiv(i128 a, i128 b) noexcept nogil:
    cdef i128 q = a / b
    if a % b != 0 and (a < 0) != (b < 0):
        q -= 1
    return q


@cython.cdivision(True)
cdef int _warn_fixed(const SymTab* t, int64_t c_lvl, int64_t s, int64_t q, int64_t e, int64_t m, int64_t key,
                     Out* o) noexcept nogil:
    """Warning-level entry of an isolated slot whose MM is charged on its entry value (a constant, so the state
    flips at one tick: ``exchange.liquidation.index.warn_entries_fixed``). Returns warned now. O(1)."""
    cdef int64_t mm = _mm_notional(t, _abs(e) * <uint64_t> t.k), maxp = t.maxp
    if c_lvl == 0 and mm > 0:
        return 1
    cdef i128 level = 0, T
    if c_lvl:
        level = (<i128> E8 * mm + c_lvl - 1) / c_lvl - 1
        if level < 0:
            level = 0
    cdef bint warned = <i128> m + <i128> ((t.mark * q - e) * t.k) <= level
    cdef i128 num = level - m + <i128> e * t.k  # B(P) ≤ level ⇔ P·q·K ≤ num
    if q > 0:
        T = _floordiv(num, <i128> q * t.k)
        if T < 1:
            return warned
        if warned:
            if T < maxp:
                _emit(o, s, DIR_UP, <int64_t> T + 1, key)
        else:
            _emit(o, s, DIR_DOWN, <int64_t> (T if T < maxp else maxp), key)
        return warned
    T = -_floordiv(-num, <i128> q * t.k)
    if T < 1:
        T = 1
    if warned:
        if T > 1:
            _emit(o, s, DIR_DOWN, <int64_t> T - 1, key)
    elif T <= maxp:
        _emit(o, s, DIR_UP, <int64_t> T, key)
    return warned


# =========================================================================================== index: entry batches
cdef class _Views:
    """Rows of a portfolio's used part as C pointers (kept alive by the memoryviews)."""
    cdef const int64_t[::1] begin, wallet, qty, entry, margin
    cdef const int32_t[::1] count, acct
    cdef const int16_t[::1] sym
    cdef const int8_t[::1] mode
    cdef Rows r

    def __init__(self, portfolio):
        self.begin, self.count, self.wallet = portfolio.acct_begin, portfolio.acct_count, portfolio.acct_wallet_units
        self.acct, self.sym, self.mode = portfolio.pos_account, portfolio.pos_symbol, portfolio.pos_mode
        self.qty, self.entry, self.margin = portfolio.pos_qty_lots, portfolio.pos_entry_cost, portfolio.pos_iso_margin_units
        if self.begin.shape[0]:
            self.r.begin, self.r.count, self.r.wallet = &self.begin[0], &self.count[0], &self.wallet[0]
        if self.qty.shape[0]:
            self.r.acct, self.r.sym, self.r.mode = &self.acct[0], &self.sym[0], &self.mode[0]
            self.r.qty, self.r.entry, self.r.margin = &self.qty[0], &self.entry[0], &self.margin[0]


cdef class _Outputs:
    """The caller's output columns as an Out (kept alive by the memoryviews)."""
    cdef int64_t[::1] osym, ov, okey
    cdef int8_t[::1] odir
    cdef uint8_t[::1] flags
    cdef Out o
    cdef int64_t cap

    def __init__(self, out_sym, out_dir, out_v, out_key, out_flags, int64_t n):
        self.osym, self.odir, self.ov, self.okey, self.flags = out_sym, out_dir, out_v, out_key, out_flags
        self.cap = min(self.osym.shape[0], self.odir.shape[0], self.ov.shape[0], self.okey.shape[0])
        if self.flags.shape[0] < n:
            raise ValueError("output arrays too short")
        self.o.w = 0
        if self.cap:
            self.o.sym, self.o.dir, self.o.v, self.o.key = &self.osym[0], &self.odir[0], &self.ov[0], &self.okey[0]


def iso_entries(portfolio, marks_ticks, slots, out_sym, out_dir, out_v, out_key, out_liq):
    """Liquidation thresholds of isolated positions (one entry each at most; see ``_iso_part``): for each slot
    in ``slots`` that is an open isolated position. ``out_liq[i]`` = liquidatable at the current mark. Returns
    the number of entries written (key = slot × 2)."""
    table = portfolio.table
    cdef const int64_t[::1] sl = slots
    cdef _Views v = _Views(portfolio)
    cdef _Outputs out = _Outputs(out_sym, out_dir, out_v, out_key, out_liq, sl.shape[0])
    cdef int64_t n = sl.shape[0], i, j, n_slots = v.qty.shape[0]
    if out.cap < n:
        raise ValueError("output arrays too short")
    cdef bint iso_entry = table.iso_entry
    cdef int64_t strict = table.strict, min_mm = table.min_mm
    cdef SymTab* tabs = _load_tables(table, marks_ticks)
    try:
        with nogil:
            for i in range(n):
                j = sl[i]
                out.flags[i] = 0
                if 0 <= j < n_slots and v.r.acct[j] >= 0 and v.r.mode[j] == ISOLATED and v.r.qty[j] != 0:
                    out.flags[i] = _iso_part(tabs, &v.r, j, iso_entry, strict, min_mm, &out.o)
    finally:
        free(tabs)
    return out.o.w


def cross_entries(portfolio, marks_ticks, accounts, out_sym, out_dir, out_v, out_key, out_liq):
    """Safe price bands of the cross parts of ``accounts`` (``_cross_part``; module docstring of
    ``exchange.liquidation.index``); ``out_liq[i]`` = liquidatable now by the table's trigger. Key = account × 2
    + 1. Returns the number of entries written; raises ``ValueError`` for more than 8 legs of one symbol."""
    table = portfolio.table
    cdef const int64_t[::1] accs = accounts
    cdef _Views v = _Views(portfolio)
    cdef _Outputs out = _Outputs(out_sym, out_dir, out_v, out_key, out_liq, accs.shape[0])
    cdef int64_t n = accs.shape[0], i, a, n_acct = v.begin.shape[0], strict = table.strict, min_mm = table.min_mm
    cdef int flag = 0
    cdef SymTab* tabs = _load_tables(table, marks_ticks)
    try:
        with nogil:
            for i in range(n):
                a = accs[i]
                out.flags[i] = 0
                if not 0 <= a < n_acct:
                    continue
                if out.o.w + 2 * v.r.count[a] > out.cap:
                    flag = -2
                    break
                flag = _cross_part(tabs, &v.r, a, strict, min_mm, &out.o)
                if flag < 0:
                    break
                out.flags[i] = flag
    finally:
        free(tabs)
    if flag == -1:
        raise ValueError(f"more than {LEGMAX} cross positions of one symbol in one account")
    if flag == -2:
        raise ValueError("output arrays too short")
    return out.o.w


MAX_WARN_LEVEL_E8 = 1 << 40  #: the compiled warning entries take levels below this (128-bit sums)


def warn_entries(portfolio, marks_ticks, level_e8, bint cross, items, out_sym, out_dir, out_v, out_key, out_warned):
    """Warning-level entries (compiled twin of ``exchange.liquidation.index.WarnIndex``'s reference entries):
    of the cross parts of the accounts ``items`` (``cross``; key a·2 + 1) or of the open isolated slots
    ``items`` (key j·2; MM on the entry value when the table says so). ``out_warned[i]``: warned now. Returns
    the number of entries written (room for 2 per leg needed); ``ValueError`` for a level ≥ 2⁴⁰ or more than
    8 legs of one symbol."""
    table = portfolio.table
    if not 1 <= level_e8 < MAX_WARN_LEVEL_E8:
        raise ValueError("warning level out of the compiled range")
    cdef int64_t c_lvl = level_e8 - 1
    cdef const int64_t[::1] its = items
    cdef _Views v = _Views(portfolio)
    cdef _Outputs out = _Outputs(out_sym, out_dir, out_v, out_key, out_warned, its.shape[0])
    cdef int64_t n = its.shape[0], i, x, b, need, n_acct = v.begin.shape[0], n_slots = v.qty.shape[0]
    cdef bint iso_entry = table.iso_entry
    cdef int flag = 0
    cdef SymTab* tabs = _load_tables(table, marks_ticks)
    try:
        with nogil:
            for i in range(n):
                x = its[i]
                out.flags[i] = 0
                if cross:
                    if not 0 <= x < n_acct:
                        continue
                    b, need = v.r.begin[x], 2 * v.r.count[x]
                else:
                    if not (0 <= x < n_slots and v.r.acct[x] >= 0 and v.r.mode[x] == ISOLATED and v.r.qty[x] != 0):
                        continue
                    b, need = x, 2
                if out.o.w + need > out.cap:
                    flag = -2
                    break
                if cross:
                    flag = _warn_part(tabs, &v.r, c_lvl, v.r.wallet[x], b, b + v.r.count[x], True, 2 * x + 1, &out.o)
                elif iso_entry:
                    flag = _warn_fixed(&tabs[v.r.sym[x]], c_lvl, v.r.sym[x], v.r.qty[x], v.r.entry[x], v.r.margin[x],
                                       2 * x, &out.o)
                else:
                    flag = _warn_part(tabs, &v.r, c_lvl, v.r.margin[x], x, x + 1, False, 2 * x, &out.o)
                if flag < 0:
                    break
                out.flags[i] = flag
    finally:
        free(tabs)
    if flag == -1:
        raise ValueError(f"more than {LEGMAX} cross positions of one symbol in one account")
    if flag == -2:
        raise ValueError("output arrays too short")
    return out.o.w


# =========================================================================================== index: the monitor's writer
cdef class PendingBuffer:
    """The pending entries of a trigger list (``exchange.liquidation.index._TriggerList``, which subclasses this
    under the compiled implementation) in numpy arrays that compiled code appends to without a numpy call:
    ``pv``, ``pkey``, ``pver`` (assigning one rebinds the compiled view), ``m`` entries pending, ``pmax`` the
    largest pending value."""
    cdef object _pv, _pkey, _pver
    cdef int64_t[::1] _v, _k
    cdef uint32_t[::1] _r
    cdef public Py_ssize_t m
    cdef public int64_t pmax

    @property
    def pv(self):
        return self._pv

    @pv.setter
    def pv(self, value):
        self._v = value
        self._pv = value

    @property
    def pkey(self):
        return self._pkey

    @pkey.setter
    def pkey(self, value):
        self._k = value
        self._pkey = value

    @property
    def pver(self):
        return self._pver

    @pver.setter
    def pver(self, value):
        self._r = value
        self._pver = value

    cdef int append(self, int64_t v, int64_t key, uint32_t ver) except -1:
        """Append one pending entry. O(1) amortised (the arrays double when full)."""
        cdef Py_ssize_t cap = min(self._v.shape[0], self._k.shape[0], self._r.shape[0])
        if self.m >= cap:
            for name in ("pv", "pkey", "pver"):
                arr = getattr(self, name)
                grown = np.zeros(2 * cap + 64, arr.dtype)
                grown[: self.m] = arr[: self.m]
                setattr(self, name, grown)
        self._v[self.m] = v
        self._k[self.m] = key
        self._r[self.m] = ver
        self.m += 1
        if v > self.pmax:
            self.pmax = v
        return 0


cdef inline int _is_current(int64_t key, uint32_t ver, const uint32_t[:] acct_ver, const uint32_t[:] pos_ver) except -1:
    """Whether the entry ``(key, ver)`` is still at its part's version: ``acct_ver`` of the account for a cross key
    ``account·2 + 1``, ``pos_ver`` of the slot for ``slot·2`` (IndexError for a key naming neither). O(1)."""
    cdef Py_ssize_t part = key >> 1
    if key < 0 or part >= (acct_ver.shape[0] if key & 1 else pos_ver.shape[0]):
        raise IndexError(f"index key {key} names no account or slot")
    return (acct_ver[part] if key & 1 else pos_ver[part]) == ver


def current(const int64_t[:] key, const uint32_t[:] ver, const uint32_t[:] acct_ver, const uint32_t[:] pos_ver):
    """Twin of ``LiqIndex._valid``: :func:`_is_current` of each entry ``(key, ver)``, as a bool array. O(n)."""
    cdef Py_ssize_t i, n = key.shape[0]
    if ver.shape[0] != n:
        raise ValueError("keys and versions differ in length")
    out = np.empty(n, np.bool_)
    cdef uint8_t[::1] ok = out.view(np.uint8)
    for i in range(n):
        ok[i] = _is_current(key[i], ver[i], acct_ver, pos_ver)
    return out


cdef Py_ssize_t _first_reaching(const int64_t[:] v, Py_ssize_t n, int64_t threshold) noexcept:
    """The first index of the sorted ``v[:n]`` whose value is ≥ ``threshold`` (``n`` if none): numpy's
    ``searchsorted(threshold)``. O(log n)."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if v[mid] < threshold:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef class _Fired:
    """The ``(key, version)`` entries a mark fires, gathered in C (grown ×2)."""
    cdef int64_t *keys
    cdef uint32_t *vers
    cdef Py_ssize_t n, cap

    def __dealloc__(self):
        free(self.keys)
        free(self.vers)

    cdef int add(self, int64_t key, uint32_t ver) except -1:
        cdef Py_ssize_t cap
        cdef int64_t *keys
        cdef uint32_t *vers
        if self.n == self.cap:
            cap = 2 * self.cap + 64
            keys = <int64_t *> malloc(cap * sizeof(int64_t))
            vers = <uint32_t *> malloc(cap * sizeof(uint32_t))
            if keys == NULL or vers == NULL:
                free(keys)
                free(vers)
                raise MemoryError()
            if self.n:
                memcpy(keys, self.keys, self.n * sizeof(int64_t))
                memcpy(vers, self.vers, self.n * sizeof(uint32_t))
            free(self.keys)
            free(self.vers)
            self.keys, self.vers, self.cap = keys, vers, cap
        self.keys[self.n] = key
        self.vers[self.n] = ver
        self.n += 1
        return 0


cdef int _fire_tier(_Fired fired, trigger_list, str values, str keys, str versions, str count,
                    int64_t threshold) except -1:
    """``_TriggerList.fire``'s step over one sorted tier (main: ``v``, ``key``, ``ver``, ``n``; middle: ``mv``, ...):
    its suffix of values ≥ ``threshold`` to ``fired``, the tier truncated before it. O(log + fired)."""
    cdef Py_ssize_t n = getattr(trigger_list, count), i, j
    if not n:
        return 0
    cdef const int64_t[:] v = getattr(trigger_list, values)
    if v[n - 1] < threshold:
        return 0
    cdef const int64_t[:] key = getattr(trigger_list, keys)
    cdef const uint32_t[:] ver = getattr(trigger_list, versions)
    i = _first_reaching(v, n, threshold)
    for j in range(i, n):
        fired.add(key[j], ver[j])
    setattr(trigger_list, count, i)
    return 0


cdef int _fire(_Fired fired, PendingBuffer trigger_list, int64_t threshold) except -1:
    """Twin of ``_TriggerList.fire(threshold)``: every entry with value ≥ ``threshold`` removed from the three tiers
    and added to ``fired`` in the reference's order (main, middle, pending; pending in its order, the rest kept in
    theirs). O(log per sorted tier + pending)."""
    _fire_tier(fired, trigger_list, "v", "key", "ver", "n", threshold)
    _fire_tier(fired, trigger_list, "mv", "mkey", "mver", "mn", threshold)
    cdef Py_ssize_t j, kept = 0, m = trigger_list.m
    cdef int64_t top = INT64_MIN  # (index._NOTHING: below every stored value)
    if not (m and trigger_list.pmax >= threshold):
        return 0
    for j in range(m):
        if trigger_list._v[j] >= threshold:
            fired.add(trigger_list._k[j], trigger_list._r[j])
        else:
            trigger_list._v[kept] = trigger_list._v[j]
            trigger_list._k[kept] = trigger_list._k[j]
            trigger_list._r[kept] = trigger_list._r[j]
            if trigger_list._v[j] > top:
                top = trigger_list._v[j]
            kept += 1
    trigger_list.m, trigger_list.pmax = kept, top
    return 0


cdef int _by_key(const void *a, const void *b) noexcept nogil:
    cdef int64_t x = (<const int64_t *> a)[0], y = (<const int64_t *> b)[0]
    return (x > y) - (x < y)


cdef object _unique(int64_t *parts, Py_ssize_t n):
    """``np.unique`` of the ``n`` values at ``parts`` (sorted there in place) as an int64 array. O(n log n)."""
    qsort(parts, n, sizeof(int64_t), _by_key)
    cdef Py_ssize_t i, u = 0
    for i in range(n):
        if u == 0 or parts[i] != parts[u - 1]:
            parts[u] = parts[i]
            u += 1
    out = np.empty(u, np.int64)
    cdef int64_t[::1] o = out
    for i in range(u):
        o[i] = parts[i]
    return out


def fire_mark(PendingBuffer down, PendingBuffer up, int64_t mark, acct_ver, pos_ver):
    """Twin of the firing part of ``LiqIndex.on_mark``: ``down.fire(mark)`` and ``up.fire(-mark)`` (the trigger
    lists of one symbol: compiled ``_TriggerList``s), the fired entries still at their part's version (``current``),
    then ``(isolated slots, accounts)`` of them, each ascending and unique; None when nothing fired. O(log per tier
    + pending + fired · log). ``acct_ver`` and ``pos_ver`` (uint32 arrays) are read only when an entry fired (a
    mark that fires nothing pays for no view of them)."""
    cdef _Fired fired = _Fired()
    _fire(fired, down, mark)
    _fire(fired, up, -mark)
    if not fired.n:
        return None
    return _current_parts(fired, acct_ver, pos_ver)


cdef tuple _current_parts(_Fired fired, const uint32_t[:] acct_ver, const uint32_t[:] pos_ver):
    """:func:`fire_mark`'s ``(isolated slots, accounts)`` of the ``fired`` entries still at their part's version."""
    cdef Py_ssize_t i, n_iso = 0, n_cross = 0
    cdef int64_t k
    cdef int64_t *parts = <int64_t *> malloc(fired.n * sizeof(int64_t))
    if parts == NULL:
        raise MemoryError()
    try:
        for i in range(fired.n):  # the isolated slots from the front, the accounts from the back
            k = fired.keys[i]
            if not _is_current(k, fired.vers[i], acct_ver, pos_ver):
                continue
            if k & 1:
                n_cross += 1
                parts[fired.n - n_cross] = k >> 1
            else:
                parts[n_iso] = k >> 1
                n_iso += 1
        return _unique(parts, n_iso), _unique(parts + fired.n - n_cross, n_cross)
    finally:
        free(parts)


cdef struct _Pending:
    int64_t v
    Py_ssize_t at  # its index in ``other`` (ties keep this order: a stable sort)


cdef int _by_value(const void *a, const void *b) noexcept nogil:
    cdef const _Pending *x = <const _Pending *> a
    cdef const _Pending *y = <const _Pending *> b
    if x.v != y.v:
        return -1 if x.v < y.v else 1
    return -1 if x.at < y.at else (1 if x.at > y.at else 0)


def merged(tuple tier, tuple other, valid):
    """Twin of ``exchange.liquidation.index._merged``: the sorted ``tier`` (values, keys, versions) with the entries
    of ``other`` (any order) inserted after the equal values already there, in value order (ties in their order
    in ``other``), both without the entries ``valid(keys, versions)`` rejects. One pass to filter, a sort of the
    kept ``other`` entries, one merge pass. O(len(tier) + len(other) · log)."""
    tv, tk, tr = tier
    ov, ok_, orr = other
    cdef const uint8_t[::1] keep_t = np.ascontiguousarray(valid(tk, tr)).view(np.uint8)
    cdef const uint8_t[::1] keep_o = np.ascontiguousarray(valid(ok_, orr)).view(np.uint8)
    cdef const int64_t[:] v = tv, k = tk, pv = ov, pk = ok_
    cdef const uint32_t[:] r = tr, pr = orr
    cdef Py_ssize_t n = v.shape[0], m = pv.shape[0], i, j, kept_t = 0, kept_o = 0
    if (k.shape[0] != n or r.shape[0] != n or keep_t.shape[0] != n or pk.shape[0] != m or pr.shape[0] != m
            or keep_o.shape[0] != m):
        raise ValueError("a tier's columns (or valid's answer) differ in length")
    for i in range(n):
        kept_t += keep_t[i]
    cdef _Pending *order = <_Pending *> malloc(sizeof(_Pending) * (m if m else 1))
    if order == NULL:
        raise MemoryError()
    try:
        for j in range(m):
            if keep_o[j]:
                order[kept_o].v, order[kept_o].at = pv[j], j
                kept_o += 1
        qsort(order, kept_o, sizeof(_Pending), _by_value)
        out_v, out_k = np.empty(kept_t + kept_o, np.int64), np.empty(kept_t + kept_o, np.int64)
        out_r = np.empty(kept_t + kept_o, np.uint32)
        _merge_into(v, k, r, keep_t, pk, pr, order, kept_o, out_v, out_k, out_r)
    finally:
        free(order)
    return out_v, out_k, out_r


cdef void _merge_into(const int64_t[:] v, const int64_t[:] k, const uint32_t[:] r, const uint8_t[::1] keep,
                      const int64_t[:] pk, const uint32_t[:] pr, const _Pending *order, Py_ssize_t kept_o,
                      int64_t[::1] out_v, int64_t[::1] out_k, uint32_t[::1] out_r) noexcept:
    """:func:`merged`'s merge: the kept tier entries and the sorted kept ``other`` ones (``order``), an ``other``
    entry after every tier entry of a value ≤ its own (``np.searchsorted(..., side="right")``)."""
    cdef Py_ssize_t i = 0, j = 0, w = 0, n = v.shape[0]
    while True:
        while i < n and not keep[i]:
            i += 1
        if i < n and (j >= kept_o or v[i] <= order[j].v):
            out_v[w], out_k[w], out_r[w] = v[i], k[i], r[i]
            i += 1
        elif j < kept_o:
            out_v[w], out_k[w], out_r[w] = order[j].v, pk[order[j].at], pr[order[j].at]
            j += 1
        else:
            return
        w += 1


cdef class _Armer:
    """One index (``LiqIndex`` or ``WarnIndex``) as :class:`MonitorWriter` re-arms it: its tables at its marks
    (columns recomputed for the symbols whose mark changed), its version arrays and trigger lists."""
    cdef object index, marks_obj, pos_ver_obj, acct_ver_obj, valid, generation
    cdef list flat  # the index's trigger lists, 2·symbol + direction
    cdef const int64_t[::1] marks
    cdef uint32_t[::1] pos_ver, acct_ver
    cdef SymTab* tabs
    cdef int64_t n_symbols, c_lvl, strict, min_mm, raw_pending
    cdef bint warn, iso_entry
    cdef bint deferring  # folds of full pending buffers held (defer)

    def __cinit__(self, index, bint warn, int64_t raw_pending):
        table = index.portfolio.table
        self.index, self.warn, self.raw_pending = index, warn, raw_pending
        self.n_symbols, self.iso_entry, self.strict, self.min_mm = table.n_symbols, table.iso_entry, table.strict, table.min_mm
        self.c_lvl = index.level_e8 - 1 if warn else 0
        if warn and not 1 <= index.level_e8 < MAX_WARN_LEVEL_E8:
            raise ValueError("warning level out of the compiled range")
        self.tabs = _load_tables(table, index.marks)

    def __dealloc__(self):
        free(self.tabs)

    cdef int sync(self, int64_t n_slots, int64_t n_accounts) except -1:
        """Follow the index's marks, version arrays (grown to the portfolio) and lists (rebound when the index's
        ``generation`` says they were replaced). O(symbols)."""
        cdef int64_t s
        if self.pos_ver_obj is None or self.pos_ver.shape[0] < n_slots or self.acct_ver.shape[0] < n_accounts:
            self.index._ensure_size()
        if self.index.generation != self.generation:
            index = self.index
            self.generation = index.generation
            self.marks_obj = index.marks
            self.marks = self.marks_obj
            self.pos_ver_obj, self.acct_ver_obj = index.pos_ver, index.acct_ver
            self.pos_ver, self.acct_ver = self.pos_ver_obj, self.acct_ver_obj
            self.flat = [tl for pair in index.lists for tl in pair]
            self.valid = index._valid
        for s in range(self.n_symbols):
            if self.tabs[s].mark != self.marks[s]:
                _set_mark(&self.tabs[s], self.marks[s])
        return 0

    cdef int rearm(self, const Rows* r, int64_t a, const int64_t* left, int64_t n_left, Out* o,
                   list liq_slots=None, list liq_accounts=None) except -1:
        """Re-arm portfolio account a (every position and its cross part) at the index's marks, like
        ``LiqIndex.rearm``: bump its versions (and those of the ``left`` slots a relocation freed), compute its
        entries, append them to the pending buffers. ``o`` has room for 2·(positions + 1). The liquidation
        index's armer appends to ``liq_slots`` / ``liq_accounts`` (when given) the isolated slots and the
        account whose part is liquidatable now. O(positions² + entries · log max_price), merges amortised."""
        cdef int64_t b = r.begin[a], e = b + r.count[a], j, i
        cdef int flag
        self.acct_ver[a] += 1
        for j in range(b, e):
            self.pos_ver[j] += 1
        for i in range(n_left):
            self.pos_ver[left[i]] += 1
        o.w = 0
        if self.warn:
            flag = _warn_part(self.tabs, r, self.c_lvl, r.wallet[a], b, e, True, 2 * a + 1, o)
        else:
            flag = _cross_part(self.tabs, r, a, self.strict, self.min_mm, o)
        if flag < 0:
            raise ValueError(f"more than {LEGMAX} cross positions of one symbol in one account")
        if flag and liq_accounts is not None and not self.warn:
            liq_accounts.append(a)
        for j in range(b, e):
            if r.mode[j] != ISOLATED or r.qty[j] == 0:
                continue
            if not self.warn:
                if _iso_part(self.tabs, r, j, self.iso_entry, self.strict, self.min_mm, o) and liq_slots is not None:
                    liq_slots.append(j)
            elif self.iso_entry:
                _warn_fixed(&self.tabs[r.sym[j]], self.c_lvl, r.sym[j], r.qty[j], r.entry[j], r.margin[j], 2 * j, o)
            else:
                _warn_part(self.tabs, r, self.c_lvl, r.margin[j], j, j + 1, False, 2 * j, o)
        for i in range(o.w):
            self._append(o.sym[i], o.dir[i], o.v[i], o.key[i])
        return 0

    cdef int _append(self, int64_t s, int d, int64_t v, int64_t key) except -1:
        """Append one entry at its part's current version; fold the list's pending buffer when it is full
        (``_TriggerList.settle``, as ``LiqIndex._insert`` does), unless the folds are held (:meth:`defer`)."""
        cdef PendingBuffer tl = <PendingBuffer> self.flat[2 * s + d]
        cdef uint32_t ver = self.acct_ver[key >> 1] if key & 1 else self.pos_ver[key >> 1]
        tl.append(-v if d == DIR_UP else v, key, ver)
        if tl.m > self.raw_pending and not self.deferring:
            tl.settle(self.valid)
        return 0

    cdef int defer(self) except -1:
        """Hold the folds of full pending buffers until :meth:`settle_deferred`: a write of many accounts then
        sorts each list's pending entries once and merges them into its tiers once, where a fold every
        ``raw_pending`` entries would merge the middle tier into the main array every ``main / 64`` entries (a
        funding settlement re-arms every holder). The lists hold the same entries either way; only the tiers they
        sit in differ, and ``fire`` reads all three. O(1)."""
        self.deferring = True
        return 0

    cdef int settle_deferred(self) except -1:
        """End :meth:`defer`: fold every list whose pending buffer is full (``_TriggerList.settle``). O(lists +
        what the folds merge)."""
        cdef PendingBuffer tl
        self.deferring = False
        for list_ in self.flat:
            tl = <PendingBuffer> list_
            if tl.m > self.raw_pending:
                tl.settle(self.valid)
        return 0


cdef struct _IdRow:
    int64_t id
    int64_t row  # the portfolio account + 1; 0: an empty cell


cdef class IdRows:
    """The risk monitor's ``_row`` map, ledger account id -> portfolio account, in C: open addressing with linear
    probing over one array of (id, row + 1) cells (16 bytes; filled at most to 2/3, doubled when it would be
    more), where a dict of Python ints costs about 90 bytes per account. The reference keeps a dict; nothing
    else tells them apart (no entry is ever removed, no caller iterates). Ids are int64 (ledger ids are
    ``0 ≤ id < 2⁶² + symbols``)."""
    cdef _IdRow* cells
    cdef int64_t n, mask

    def __cinit__(self):
        self.n, self.mask = 0, 7
        self.cells = <_IdRow*> calloc(8, sizeof(_IdRow))
        if self.cells == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.cells)

    cdef inline int64_t _cell(self, int64_t account_id) noexcept:
        """The cell holding ``account_id``, or the empty cell where it would go."""
        cdef uint64_t i = (<uint64_t> account_id * <uint64_t> 0x9E3779B97F4A7C15ULL) >> 32  # Fibonacci hashing
        while True:
            i &= <uint64_t> self.mask
            if self.cells[i].row == 0 or self.cells[i].id == account_id:
                return <int64_t> i
            i += 1

    cdef int64_t find(self, int64_t account_id) noexcept:
        """The portfolio account of ``account_id``, −1: none. O(1) expected."""
        return self.cells[self._cell(account_id)].row - 1

    cdef int put(self, int64_t account_id, int64_t row) except -1:
        """Map ``account_id`` to portfolio account ``row`` (≥ 0). O(1) amortised."""
        cdef int64_t i = self._cell(account_id)
        if self.cells[i].row == 0:
            if 3 * (self.n + 1) > 2 * (self.mask + 1):
                self._grow()
                i = self._cell(account_id)
            self.n += 1
        self.cells[i].id, self.cells[i].row = account_id, row + 1
        return 0

    cdef int _grow(self) except -1:
        cdef _IdRow* old = self.cells
        cdef int64_t j, size = self.mask + 1
        self.cells = <_IdRow*> calloc(2 * size, sizeof(_IdRow))
        if self.cells == NULL:
            self.cells = old
            raise MemoryError()
        self.mask = 2 * size - 1
        for j in range(size):
            if old[j].row:
                self.cells[self._cell(old[j].id)] = old[j]
        free(old)
        return 0

    def get(self, account_id, default=None):
        cdef int64_t row = self.find(account_id)
        return default if row < 0 else row

    def __getitem__(self, account_id):
        cdef int64_t row = self.find(account_id)
        if row < 0:
            raise KeyError(account_id)
        return row

    def __setitem__(self, account_id, row):
        if row < 0:
            raise ValueError("a portfolio account is ≥ 0")
        self.put(account_id, row)

    def __contains__(self, account_id):
        return self.find(account_id) >= 0

    def __len__(self):
        return self.n

    def nbytes(self) -> int:
        """Bytes of the cell array."""
        return (self.mask + 1) * sizeof(_IdRow)


cdef class MonitorWriter:
    """Compiled twin of the risk monitor's rewrite of touched accounts (``RiskMonitor._write`` of each, then
    ``LiqIndex.rearm`` and ``WarnIndex.rearm``): per account its wallet and, per position slot, size, entry
    cost, isolated margin, leverage and margin mode from the ledger (bounds checked as
    ``exchange.accounts.storage.Portfolio`` checks them: an account outside them stays flat and is added to the
    monitor's ``unindexed``), then both indexes re-armed. New rows and slots (once per account and position
    key) are written here while the arrays have room, else by the monitor's ``_new_row`` / ``_add_slot`` (array
    growth, block relocation). Per account O(positions² + entries · log)."""
    cdef object monitor, portfolio
    cdef dict accounts, defaults, symbol_index
    cdef IdRows rows_of
    cdef list slot_keys, ids
    cdef set unindexed
    cdef _Armer liq, warn
    cdef object generation
    cdef int32_t[::1] p_acct
    cdef int16_t[::1] p_sym, p_lev
    cdef int8_t[::1] p_side, p_mode
    cdef int64_t[::1] p_qty, p_ent, p_mar, a_begin, a_wallet, a_expo
    cdef int32_t[::1] a_count, a_cap
    cdef const int64_t[::1] maxp, k, max_lev
    cdef Rows r
    cdef Out o
    cdef int64_t o_cap
    cdef list left
    # the log of the portfolio accounts written since its epoch began (what a reader that keeps something it
    # filtered from the rows patches it with: the ADL queue's kept slots, exchange.liquidation.adl._bounds.SideSlots);
    # started over, with a new epoch, when a write would take it past max(log_min, accounts / 8)
    cdef readonly object log_rows  # int64 array, rows[0:logged] the log (grown ×2)
    cdef int64_t[::1] log_view
    cdef readonly Py_ssize_t logged
    cdef readonly int64_t log_epoch
    cdef public Py_ssize_t log_min

    def __cinit__(self, monitor, liq_index, warn_index, int64_t raw_pending):
        self.monitor, self.portfolio = monitor, monitor.portfolio
        self.accounts, self.rows_of, self.slot_keys = monitor.ledger.accounts, monitor._row, monitor._slot_keys
        self.ids, self.symbol_index = monitor.ids, monitor._symbol_index
        self.unindexed, self.defaults = monitor._unindexed, monitor.ledger._defaults  # as Ledger.settings reads them
        table = self.portfolio.table
        self.maxp, self.k, self.max_lev = table.max_price_ticks, table.k_units, table.max_leverage
        self.liq = _Armer(liq_index, False, raw_pending)
        self.warn = _Armer(warn_index, True, raw_pending)
        self.o_cap = 0
        self.log_rows = np.zeros(64, np.int64)
        self.log_view = self.log_rows
        self.logged, self.log_epoch, self.log_min = 0, 0, 4096

    def __dealloc__(self):
        free(self.o.sym)
        free(self.o.dir)
        free(self.o.v)
        free(self.o.key)

    def write(self, account_ids, bint rearm):
        """Write the rows of ``account_ids`` (ledger ids, in order) and, with ``rearm``, then re-arm both indexes
        for them."""
        cdef list rows = []
        cdef dict left = {}  # portfolio account -> the slots a relocation of its block freed (rare)
        cdef int64_t a
        cdef bint logging = self.logged + len(account_ids) <= max(self.log_min, len(self.ids) // 8)
        if not logging:  # the log starts over: its readers filter every row again
            self.logged, self.log_epoch = 0, self.log_epoch + 1
        elif self.logged + len(account_ids) > self.log_view.shape[0]:
            grown = np.zeros(max(2 * self.log_view.shape[0], self.logged + len(account_ids)), np.int64)
            grown[:self.logged] = self.log_rows[:self.logged]
            self.log_rows, self.log_view = grown, grown
        self._views()  # (a reallocation while writing, by _new_row's or _add_slot's fallback, rebinds them there)
        for account_id in account_ids:
            a = self._write(account_id)
            rows.append(a)
            if logging:
                self.log_view[self.logged] = a
                self.logged += 1
            if self.left is not None:
                left[a] = self.left
        if not rearm:
            return
        p = self.portfolio
        self.liq.sync(p.n_slots, p.n_accounts)
        self.warn.sync(p.n_slots, p.n_accounts)
        self.liq.defer()
        self.warn.defer()
        try:
            for a in rows:
                self._rearm(a, left.get(a) if left else None)
        finally:
            self.liq.settle_deferred()
            self.warn.settle_deferred()

    def recheck(self, rows):
        """``LiqIndex.rearm(rows)`` without a numpy call per step: re-arm the liquidation index for the portfolio
        accounts ``rows`` (whose mirror rows are current) at its marks; returns ``(isolated slots, accounts)``
        among them liquidatable now, as int64 arrays (slots in no particular order). O(their positions² +
        entries · log max_price)."""
        cdef list slots = [], accounts = []
        cdef int64_t a, need
        self._views()
        p = self.portfolio
        self.liq.sync(p.n_slots, p.n_accounts)
        self.liq.defer()
        try:
            for a in sorted(set(rows)):
                if a < 0:
                    continue
                need = 2 * (self.a_count[a] + 1)
                if need > self.o_cap:
                    self._grow_out(max(need, 2 * self.o_cap))
                self.liq.rearm(&self.r, a, NULL, 0, &self.o, slots, accounts)
        finally:
            self.liq.settle_deferred()
        return np.array(slots, np.int64), np.array(accounts, np.int64)

    def written(self, int64_t a):
        """``RiskMonitor.written`` of portfolio account ``a`` (rows and indexed: the caller's test): its wallet
        and, sorted, ``(key, size, entry cost, isolated margin, leverage, margin mode)`` of each slot with a size,
        entry cost or isolated margin, as the mirror holds them. O(its slots · log)."""
        return self._written(a)

    def signature(self, account_id):
        """``RiskMonitor.signature`` of a ledger account: its wallet and, sorted, ``(key, size, entry cost, isolated
        margin, leverage, margin mode)`` of each position with a size, entry cost or isolated margin, the settings
        read as ``Ledger.settings`` reads them. O(its positions · log)."""
        return self._signature(account_id)

    def stale_of(self, account_ids, set unindexed):
        """The accounts of ``account_ids`` whose rows do not hold their ledger state: ``RiskMonitor.stale_due``'s
        test ``written(a) != signature(a)`` (``written`` None without a row or outside the mirror's bounds),
        in one call. O(their positions · log)."""
        cdef set stale = set()
        cdef int64_t a
        for account_id in account_ids:
            a = self.rows_of.find(account_id)
            written = None if a < 0 or account_id in unindexed else self._written(a)
            if written != self._signature(account_id):
                stale.add(account_id)
        return stale

    cdef tuple _written(self, int64_t a):
        """:meth:`written`."""
        self._views()
        cdef int64_t b = self.a_begin[a], j
        cdef list rows = []
        for j in range(b, b + self.a_count[a]):
            if self.p_qty[j] or self.p_ent[j] or self.p_mar[j]:
                rows.append(((<list> self.slot_keys[self.p_sym[j]])[self.p_side[j]], self.p_qty[j], self.p_ent[j],
                             self.p_mar[j], self.p_lev[j], self.p_mode[j]))
        rows.sort()
        return self.a_wallet[a], tuple(rows)

    cdef tuple _signature(self, account_id):
        """:meth:`signature`."""
        account = self.accounts[account_id]
        cdef list rows = []
        for key, p in account.positions.items():
            if p.lots or p.entry_cost or p.isolated_margin_units:
                settings = settings_of(account, key[0], EMPTY, self.defaults)
                rows.append((key, p.lots, p.entry_cost, p.isolated_margin_units, settings.leverage,
                             int(settings.margin_mode)))
        rows.sort()
        untrack_all(rows, 0)
        cdef tuple held = tuple(rows)
        untrack(held)
        signature = (account.wallet_units, held)
        untrack(signature)
        return signature

    cdef int _views(self) except -1:
        """(Re)bind the portfolio's arrays when they were reallocated."""
        p = self.portfolio
        if p.generation == self.generation:
            return 0
        self.generation = p.generation
        P, A = p._pos, p._acct
        self.p_acct, self.p_sym, self.p_side, self.p_mode = P["pos_account"], P["pos_symbol"], P["pos_side"], P["pos_mode"]
        self.p_lev, self.p_qty, self.p_ent, self.p_mar = P["pos_leverage"], P["pos_qty_lots"], P["pos_entry_cost"], P["pos_iso_margin_units"]
        self.a_begin, self.a_count, self.a_cap = A["acct_begin"], A["acct_count"], A["acct_cap"]
        self.a_wallet, self.a_expo = A["acct_wallet_units"], A["acct_exposure_units"]
        self.r.begin, self.r.count, self.r.wallet = &self.a_begin[0], &self.a_count[0], &self.a_wallet[0]
        self.r.acct, self.r.sym, self.r.mode = &self.p_acct[0], &self.p_sym[0], &self.p_mode[0]
        self.r.qty, self.r.entry, self.r.margin = &self.p_qty[0], &self.p_ent[0], &self.p_mar[0]
        return 0

    cdef int64_t _write(self, account_id) except -1:
        """One account's rows: all flat, new slots for new position keys (the slots a relocation freed in
        ``left``), then the ledger's values (or flat, unindexed, when a bound breaks). Returns its portfolio
        account."""
        cdef AccountRec account = self.accounts[account_id]
        cdef int64_t a = self.rows_of.find(account_id), j, b, cnt  # (write bound the arrays: _views)
        if a < 0:
            a = self._new_row(account_id, account)
        b, cnt = self.a_begin[a], self.a_count[a]
        for j in range(b, b + cnt):
            self.p_qty[j] = self.p_ent[j] = self.p_mar[j] = 0
        self.a_wallet[a] = self.a_expo[a] = 0
        positions = account.positions  # (read-only, not always a dict: exchange.accounts.ledger.EMPTY)
        self.left = None
        cdef bint scan = cnt <= SCAN_SLOTS  # a few slots: a pass over them per key costs less than the bit set
        cdef uint64_t held[KEY_WORDS]  # else (symbol index, side) of the block's slots, where below 64 × KEY_WORDS
        cdef int64_t v, i
        cdef bint known
        if not scan:
            for i in range(KEY_WORDS):
                held[i] = 0
            for j in range(b, b + cnt):
                v = self.p_sym[j] * 4 + self.p_side[j]
                if v < 64 * KEY_WORDS:
                    held[v >> 6] |= (<uint64_t> 1) << (v & 63)
        for key in positions:
            if scan:
                known = self._slot_of(a, key) >= 0
            else:
                v = <int64_t> self.symbol_index[key[0]] * 4 + <int64_t> key[1]
                if v < 64 * KEY_WORDS:  # the bit set answers exactly; beyond it, the block's scan
                    known = held[v >> 6] & ((<uint64_t> 1) << (v & 63)) != 0
                else:
                    known = self._slot_of(a, key) >= 0
            if not known:
                self._add_slot(a, key)  # a new position key: a slot (once per key)
        if self._fill(a, account, positions):
            self.unindexed.discard(account_id)
        else:
            b, cnt = self.a_begin[a], self.a_count[a]
            for j in range(b, b + cnt):
                self.p_qty[j] = self.p_ent[j] = self.p_mar[j] = 0
            self.a_wallet[a] = self.a_expo[a] = 0
            self.unindexed.add(account_id)
        return a

    cdef int64_t _new_row(self, account_id, account) except -1:
        """``RiskMonitor._new_row`` (a flat portfolio account with room for the account's positions), written
        here while the portfolio's arrays have room (``Portfolio.add_account``'s writes), else by it. O(1)."""
        p = self.portfolio
        cdef int64_t a = p.n_accounts, b = p.n_slots, cap = max(1, len(account.positions))
        if a >= self.a_begin.shape[0] or b + cap > self.p_qty.shape[0]:
            row = self.monitor._new_row(account)
            self._views()
            return row
        self.a_begin[a], self.a_count[a], self.a_cap[a], self.a_wallet[a], self.a_expo[a] = b, 0, cap, 0, 0
        p.n_slots, p.n_accounts = b + cap, a + 1  # the slots past n_slots are flat with no account
        if p._viewed:  # (its kept views end at the old counts: Portfolio._resized)
            p._resized()
        self.rows_of.put(account_id, a)
        self.ids.append(account_id)
        return a

    cdef int64_t _slot_of(self, int64_t a, tuple key) except -2:
        """The slot of position ``key`` in account a's block (its symbol and side columns), −1: none. O(its slots)."""
        cdef int64_t s = self.symbol_index[key[0]], side = key[1], j, b = self.a_begin[a]
        for j in range(b, b + self.a_count[a]):
            if self.p_sym[j] == s and self.p_side[j] == side:
                return j
        return -1

    cdef int _add_slot(self, int64_t a, tuple key) except -1:
        """``RiskMonitor._add_slot`` (a flat cross slot at leverage 1 for a new position key), written here when
        the account's block has room (``Portfolio.add_position``'s writes), else by it (a relocation: the slots
        it freed join ``left``). O(1)."""
        cdef int64_t b = self.a_begin[a], n = self.a_count[a], s = self.symbol_index[key[0]], j = b + n
        if n >= self.a_cap[a] or self.max_lev[s] < 1:
            self.left = (self.left or []) + self.monitor._add_slot(a, key)
            self._views()
            return 0
        self.p_acct[j], self.p_sym[j], self.p_side[j], self.p_mode[j], self.p_lev[j] = a, s, key[1], 1, 1
        self.p_qty[j] = self.p_ent[j] = self.p_mar[j] = 0
        self.a_count[a] = n + 1
        return 0

    cdef bint _fill(self, int64_t a, AccountRec account, positions) except -1:
        """Write the ledger's values into account a's flat rows; False (rows partly written) when a value breaks
        a bound. The account, its positions and settings are read through their slots."""
        cdef int64_t b = self.a_begin[a], j, s, q, e, m, lev, mode, side, wallet
        cdef u128 total, term, limit = (<u128> 1) << 62
        cdef PositionRec position
        cdef SettingsRec settings
        try:
            wallet = account.wallet_units
            total = _abs(wallet)
            for j in range(b, b + self.a_count[a]):
                s = self.p_sym[j]
                key = (<list> self.slot_keys[s])[self.p_side[j]]
                found = positions.get(key)
                if found is None:
                    continue
                position = found
                q, e, m = position.lots, position.entry_cost, position.isolated_margin_units
                settings = settings_of(account, key[0], EMPTY, self.defaults)  # Ledger.settings
                lev, mode, side = settings.leverage, settings.margin_mode, self.p_side[j]
                if mode != 1 and mode != ISOLATED or mode == 1 and m != 0 or not 1 <= lev <= self.max_lev[s]:
                    return False
                if (q == 0 and e != 0) or (q > 0 and e < 0) or (q < 0 and e > 0) or (side == 2 and q < 0) \
                        or (side == 3 and q > 0):
                    return False
                term = max(<u128> _abs(q) * <u128> self.maxp[s], <u128> _abs(e))
                if term > limit:
                    return False
                total += term * <u128> self.k[s] + _abs(m)
                if total > limit:
                    return False
                self.p_qty[j], self.p_ent[j], self.p_mar[j] = q, e, m
                self.p_lev[j], self.p_mode[j] = lev, mode
            if total > limit:
                return False
            self.a_wallet[a] = wallet
            self.a_expo[a] = <int64_t> total
        except OverflowError:
            return False
        return True

    cdef int _rearm(self, int64_t a, list left_slots) except -1:
        """Re-arm both indexes for portfolio account a (and ``left_slots``, freed by a relocation, or None)."""
        cdef int64_t need = 2 * (self.a_count[a] + 1), i, n_left = len(left_slots) if left_slots else 0
        cdef int64_t* left = NULL
        if need > self.o_cap:
            self._grow_out(max(need, 2 * self.o_cap))
        if n_left:
            left = <int64_t*> malloc(sizeof(int64_t) * n_left)
            if left == NULL:
                raise MemoryError()
        try:
            for i in range(n_left):
                left[i] = left_slots[i]
            self.liq.rearm(&self.r, a, left, n_left, &self.o)
            self.warn.rearm(&self.r, a, left, n_left, &self.o)
        finally:
            free(left)
        return 0

    cdef int _grow_out(self, int64_t cap) except -1:
        free(self.o.sym)
        free(self.o.dir)
        free(self.o.v)
        free(self.o.key)
        self.o.sym = <int64_t*> malloc(sizeof(int64_t) * cap)
        self.o.dir = <int8_t*> malloc(sizeof(int8_t) * cap)
        self.o.v = <int64_t*> malloc(sizeof(int64_t) * cap)
        self.o.key = <int64_t*> malloc(sizeof(int64_t) * cap)
        self.o_cap = cap
        if self.o.sym == NULL or self.o.dir == NULL or self.o.v == NULL or self.o.key == NULL:
            self.o_cap = 0
            raise MemoryError()
        return 0

