# cython: language_level=3
"""Compiled twin of the hot part of :mod:`exchange.accounts.pretrade` (rules §4): the order sums, the
order-margin holds, the available balance and the pre-trade check of an opening order.

Built to ``exchange.accounts._pretrade``; only :mod:`exchange._impl` imports it (``pretrade_kernel``), and
:class:`~exchange.accounts.pretrade.Risk` (``compiled=True``) binds its methods in place of the reference's.
The data stay the reference's: the same dicts (``Risk._orders``: (account, symbol) -> sums,
``Risk._order_home``: order id -> (account, symbol)), the same record tuples, the same ``Account.holds``.
The sums of one (account, symbol) are C int64 fields, and the holds are computed in int64, with every step
checked for overflow: a value or step that leaves int64 sends that computation (and, for the sums, that
(account, symbol) for good) to Python integers, so every value equals the reference's.

Contents
--------
- :class:`OrderSums`      twin of ``pretrade._OrderSums``: one (account, symbol)'s resting orders and sums.
- :func:`sums_hold`       twin of ``pretrade.sums_hold``. O(1).
- :class:`RiskKernel`     twin of ``Risk.key_hold``, ``Risk.store_holds``, ``Risk.track_order`` and
                          ``Risk.order_sums`` (each O(1): one or two keys), ``reduce_only`` (the drain's
                          test), ``Risk.available`` (O(positions))
                          , ``Risk.check_opening`` (O(1) + ``available`` when the hold rises) and
                          ``Risk.part_states`` (every margin part's balance and MM; O(positions · log)); the
                          per-part queries of the liquidation stage and the monitor (``notional``, ``upnl``,
                          ``position_mm``, ``isolated_mm``, ``part_mm``, ``is_isolated``, ``is_liquidatable``,
                          ``cross_positions``, ``cross_balance``, ``cross_mm``, ``part_state``,
                          ``part_liquidatable``, ``margin_calls``, ``bankruptcy_price_ticks``; O(1) for one
                          position, O(positions) for a part) and ``refresh_holds`` (O(orders there)), the
                          reference's values and iteration order. ``part_state``, ``part_states`` and
                          ``available`` compute a position's uPnL, notional, MM and integer-leverage IM in int64
                          (:class:`Terms`, ``_value64``, ``_mm64``), falling back to Python ints on overflow.
- :class:`Terms`          one symbol's K and bracket rows in C (the int64 fast path's terms).
- :class:`RiskPrice`      twin of ``Exchange.risk_price`` (the risk stage's ``mark_of``), which the kernel calls in C
                          once per position it values. O(1).
"""
cimport cython
from cpython.long cimport PyLong_AsLongLongAndOverflow
from exchange._records cimport RecordMaker, untrack, untrack_all
from exchange.accounts._ledger cimport (Account as AccountRec, Position as PositionRec, SymbolSettings as SettingsRec,
                                        check_layout)
from exchange.accounts._margin cimport initial_margin, margin_ratio_e8, settings_of
from exchange.accounts._positions cimport position_of
from exchange.orders._matching cimport MatchingEngine
from exchange.enums import MarginMode, PositionMode, RejectCode, Side
from exchange.events import MarginCall
from exchange.accounts.margin import RATIO_INF as _RATIO_INF, trigger_terms

cdef extern from *:
    """
    static inline int pretrade_add_ovf(long long a, long long b, long long *r)
    { return __builtin_add_overflow(a, b, r); }
    static inline int pretrade_sub_ovf(long long a, long long b, long long *r)
    { return __builtin_sub_overflow(a, b, r); }
    static inline int pretrade_mul_ovf(long long a, long long b, long long *r)
    { return __builtin_mul_overflow(a, b, r); }
    """
    bint add_ovf "pretrade_add_ovf" (long long a, long long b, long long *r)
    bint sub_ovf "pretrade_sub_ovf" (long long a, long long b, long long *r)
    bint mul_ovf "pretrade_mul_ovf" (long long a, long long b, long long *r)

cdef extern from "<limits.h>":
    const long long LLONG_MIN
    const long long LLONG_MAX

check_layout()
cdef object ISOLATED = MarginMode.ISOLATED
cdef object E8 = 10**8
cdef object OK = RejectCode.OK
cdef object MAX_POSITION_AT_LEVERAGE = RejectCode.MAX_POSITION_AT_LEVERAGE
cdef object MARGIN_INSUFFICIENT = RejectCode.MARGIN_INSUFFICIENT

cdef object BUY = Side.BUY
cdef long long BUY_VALUE = Side.BUY
cdef object HEDGE = PositionMode.HEDGE
cdef object LONG_SIDE, SHORT_SIDE, BOTH_SIDE
from exchange.enums import PositionSide
from exchange.accounts.ledger import EMPTY  # the shared empty positions and holds (ledger module docstring, Memory)
LONG_SIDE, SHORT_SIDE, BOTH_SIDE = PositionSide.LONG, PositionSide.SHORT, PositionSide.BOTH
cdef tuple SIDE_MEMBERS = (None, BOTH_SIDE, LONG_SIDE, SHORT_SIDE)  # OrderSums' row i holds SIDE_MEMBERS[i]
from exchange.accounts.ledger import NO_WARNINGS
cdef object RATIO_INF = _RATIO_INF
assert margin_ratio_e8(1, 0, True) == RATIO_INF and margin_ratio_e8(1, 3, True) == 33_333_334, "_margin.pxd"
cdef RecordMaker MARGIN_CALL = RecordMaker(MarginCall)  # (made in C, without the dataclass __init__ frame)


cdef inline SettingsRec _settings(account, symbol, dict defaults):
    """``Ledger.settings(account, symbol)`` (:func:`exchange.accounts._margin.settings_of`)."""
    return settings_of(account, symbol, EMPTY, defaults)


cdef inline object _position(account, key):
    """``account.positions.get(key)``; the shared EMPTY (no positions) without a mapping-proxy call. O(1)."""
    return position_of((<AccountRec?>account).positions, key, EMPTY)


cdef inline bint _i64(object value, long long *out):
    """Whether ``value`` is an int within int64 (then stored in ``out``). O(1)."""
    cdef int overflow = 0
    if not isinstance(value, int):
        return False
    out[0] = PyLong_AsLongLongAndOverflow(value, &overflow)
    return overflow == 0


cdef inline int _row(object position_side):
    """OrderSums' row of a position side (1 BOTH, 2 LONG, 3 SHORT), 0 for anything else. O(1)."""
    if position_side is BOTH_SIDE:
        return 1
    if position_side is LONG_SIDE:
        return 2
    if position_side is SHORT_SIDE:
        return 3
    return 0


@cython.cdivision(True)
cdef inline long long _floordiv(long long a, long long b):
    """Python's ``a // b`` for ``b`` > 0 (here ``//`` and ``%`` are C's, truncating toward zero). O(1)."""
    cdef long long q = a // b
    if a % b < 0:
        q -= 1
    return q


cdef inline bint _adding64(long long cost, long long k, long long lots, long long closable, long long *out):
    """``_adding(cost × k, lots, closable)`` in int64; False (``out`` unset) when a step leaves int64. O(1)."""
    cdef long long notional, product, q
    if lots <= closable:
        out[0] = 0
        return True
    if mul_ovf(cost, k, &notional) or mul_ovf(notional, closable - lots, &product):
        return False
    q = _floordiv(product, lots)  # lots > closable ≥ 0
    if q == LLONG_MIN:
        return False
    out[0] = -q
    return True


cdef inline bint _hold64(long long k, long long leverage, long long position_lots, long long buy_lots,
                         long long buy_cost, long long sell_lots, long long sell_cost, long long *out):
    """``sums_hold`` in int64 (``leverage`` ≥ 1): ``out`` = hold, adding buy, adding sell; False (``out``
    partly set) when a step leaves int64, for the caller to redo it on Python ints. O(1)."""
    cdef long long most
    if position_lots == LLONG_MIN:
        return False
    if not _adding64(buy_cost, k, buy_lots, -position_lots if position_lots < 0 else 0, &out[1]):
        return False
    if not _adding64(sell_cost, k, sell_lots, position_lots if position_lots > 0 else 0, &out[2]):
        return False
    most = out[1] if out[1] >= out[2] else out[2]
    if most == LLONG_MIN:
        return False
    out[0] = -_floordiv(-most, leverage)  # margin.initial_margin at an int leverage
    return True


cdef inline object _mm(object rows, object notional):
    """:func:`exchange.accounts.margin.maintenance_margin`: ``ceil((notional × mmr − cum_x8) / 10⁸)`` of the first
    bracket with ``notional ≤ cap`` (the last one above every cap), on Python ints. O(brackets)."""
    row = rows[len(rows) - 1]
    for candidate in rows:
        if notional <= candidate.cap_units:
            row = candidate
            break
    return -((-(notional * row.mmr_e8 - row.cum_x8)) // E8)


cdef inline object _abs(object value):
    return value if value >= 0 else -value


cdef class OrderSums:
    """One (account, symbol): its resting orders (id -> record) and their sums per position side, read as
    :attr:`sums` (``[buy lots, buy cost, sell lots, sell cost, reduce-only buy lots, reduce-only sell lots]``).
    Twin of ``exchange.accounts.pretrade._OrderSums``.

    The sums live in C int64 fields, one row per position side, while every value fits; the first change
    that would leave int64 (or a position side that is not a ``PositionSide`` member) moves them for good to
    the reference's layout on Python ints (``big``). Either way the values are the reference's."""

    cdef public dict orders
    cdef long long c[4][6]  # row _row(position side); row 0 unused
    cdef unsigned char seen[3]  # the rows in the order their position side first came (the reference dict's)
    cdef int n_seen
    cdef readonly dict big  # the reference layout, once a value left int64; None before
    cdef tuple key  # its (account, symbol) key in Risk._orders when track_order made it (shared by _order_home)

    def __init__(self):
        self.orders = {}

    @property
    def sums(self):
        """Position side -> the six sums, the reference's dict (a fresh one while the sums are in C fields). O(1)."""
        if self.big is not None:
            return self.big
        cdef dict sums = {}
        cdef int j, i
        for j in range(self.n_seen):
            i = self.seen[j]
            sums[SIDE_MEMBERS[i]] = [self.c[i][0], self.c[i][1], self.c[i][2], self.c[i][3], self.c[i][4], self.c[i][5]]
        return sums

    cdef bint reduce_only(self):
        """Whether some position side has reduce-only lots (the drain's test for the trim). O(1)."""
        cdef int i
        if self.big is not None:
            return any(sums[4] or sums[5] for sums in self.big.values())
        for i in range(1, 4):
            if self.c[i][4] or self.c[i][5]:
                return True
        return False

    cpdef add(self, tuple record, object sign):
        """Add (``sign`` = 1) or remove (-1) one record from the sums. O(1)."""
        position_side, side, price_ticks, lots, reduce_only = record
        cdef long long s = 0, q = 0, p = 0, signed_lots = 0, signed_cost = 0, new_lots = 0, new_cost = 0
        cdef int i = _row(position_side) if self.big is None else 0
        cdef int j
        cdef bint buy
        if i and _i64(sign, &s) and _i64(lots, &q) and _i64(side, &p) and not mul_ovf(s, q, &signed_lots):
            buy = p == BUY_VALUE
            if reduce_only:
                j = 4 if buy else 5
                if not add_ovf(self.c[i][j], signed_lots, &new_lots):
                    self._see(i)
                    self.c[i][j] = new_lots
                    return
            else:
                j = 0 if buy else 2
                if (_i64(price_ticks, &p) and not mul_ovf(signed_lots, p, &signed_cost)
                        and not add_ovf(self.c[i][j], signed_lots, &new_lots)
                        and not add_ovf(self.c[i][j + 1], signed_cost, &new_cost)):
                    self._see(i)
                    self.c[i][j] = new_lots
                    self.c[i][j + 1] = new_cost
                    return
        if self.big is None:  # from now on, the reference's layout and arithmetic
            self.big = self.sums
        cdef list sums = self.big.get(position_side)
        if sums is None:
            sums = [0, 0, 0, 0, 0, 0]
            self.big[position_side] = sums
        if reduce_only:
            j = 4 if side == BUY else 5
            sums[j] += sign * lots
        else:
            j = 0 if side == BUY else 2
            sums[j] += sign * lots
            sums[j + 1] += sign * price_ticks * lots

    cdef inline void _see(self, int i):
        """Note that row ``i`` has an entry (the reference creates it at a side's first record)."""
        cdef int j
        for j in range(self.n_seen):
            if self.seen[j] == i:
                return
        self.seen[self.n_seen] = i
        self.n_seen += 1


cdef inline object _adding(object notional_units, object lots, object closable_lots):
    """``ceil(N × (lots − closable) / lots)``, 0 when the side only closes (twin of ``pretrade._adding``)."""
    if lots > closable_lots:
        return -(notional_units * (closable_lots - lots) // lots)
    return 0


cpdef tuple sums_hold(object k_units, object leverage, object position_lots, object buy_lots, object buy_cost,
                      object sell_lots, object sell_cost):
    """Twin of :func:`exchange.accounts.pretrade.sums_hold`: ``(hold, adding_buy, adding_sell)``; in int64
    when every input and step fits (and ``leverage`` is an int ≥ 1), else on Python ints. O(1)."""
    cdef long long k = 0, lev = 1, pos = 0, bl = 0, bc = 0, sl = 0, sc = 0
    cdef long long out[3]
    out[0] = out[1] = out[2] = 0
    if (type(leverage) is int and _i64(leverage, &lev) and lev >= 1 and _i64(k_units, &k)
            and _i64(position_lots, &pos) and _i64(buy_lots, &bl) and _i64(buy_cost, &bc) and _i64(sell_lots, &sl)
            and _i64(sell_cost, &sc) and _hold64(k, lev, pos, bl, bc, sl, sc, out)):
        return out[0], out[1], out[2]
    return _sums_hold_py(k_units, leverage, position_lots, buy_lots, buy_cost, sell_lots, sell_cost)


cdef tuple _sums_hold_py(object k_units, object leverage, object position_lots, object buy_lots, object buy_cost,
                         object sell_lots, object sell_cost):
    """:func:`sums_hold` on Python ints (the reference's arithmetic). O(1) big-int operations."""
    adding_buy = _adding(buy_cost * k_units, buy_lots, -position_lots if position_lots < 0 else 0)
    adding_sell = _adding(sell_cost * k_units, sell_lots, position_lots if position_lots > 0 else 0)
    notional = adding_buy if adding_buy >= adding_sell else adding_sell
    return initial_margin(notional, leverage), adding_buy, adding_sell


cdef extern from *:
    """
    typedef __int128 pretrade_i128;
    """
    ctypedef long long i128 "pretrade_i128"  # (Cython needs a C name; the arithmetic is 128-bit)


@cython.cdivision(True)
cdef inline bint _ratio_below(long long mm, long long balance, long long level):
    """Whether ``min(ceil(mm × 10⁸ / balance), RATIO_INF) < level`` for ``balance`` > 0 (margin.margin_ratio_e8),
    in 128-bit integers: exact for any int64 operands. O(1)."""
    cdef i128 x = (<i128>mm) * 100000000
    cdef i128 ratio = (x + balance - 1) / balance if x >= 0 else x / balance  # ceil (C truncates toward zero)
    if ratio > LLONG_MAX:
        ratio = LLONG_MAX
    return ratio < level


cdef enum:
    MAX_BRACKETS = 32  # bracket rows a Terms holds in C (more: the Python-int path)


cdef class Terms:
    """One symbol's margin terms in C, for the int64 fast path of the per-position arithmetic: K and the
    bracket rows (cap, MMR ×10⁸, the cumulative deduction ×10⁸ in 128 bits). ``fits`` is False when a value
    does not fit (or there are more than ``MAX_BRACKETS`` rows): then every caller takes the Python-int path."""

    cdef long long k
    cdef int n
    cdef long long cap[MAX_BRACKETS]
    cdef long long mmr[MAX_BRACKETS]
    cdef i128 cum[MAX_BRACKETS]
    cdef bint fits

    def __init__(self, k_units, rows):
        cdef long long hi
        cdef unsigned long long lo
        self.n = len(rows)
        self.fits = _i64(k_units, &self.k) and 0 < self.n <= MAX_BRACKETS
        if not self.fits:
            return
        for i, row in enumerate(rows):
            # a cap beyond int64 holds every int64 notional, as LLONG_MAX does
            if not _i64(row.cap_units, &self.cap[i]):
                self.fits = isinstance(row.cap_units, int) and row.cap_units > 0
                self.cap[i] = LLONG_MAX
            cum = row.cum_x8
            if not (_i64(row.mmr_e8, &self.mmr[i]) and isinstance(cum, int) and -2**120 < cum < 2**120):
                self.fits = False
            if not self.fits:
                return
            hi, lo = cum >> 64, cum & 0xFFFFFFFFFFFFFFFF
            self.cum[i] = (<i128>hi) * 4294967296 * 4294967296 + <i128>lo  # hi · 2⁶⁴ + lo


@cython.cdivision(True)
cdef inline bint _mm64(Terms t, long long notional, long long *out):
    """:func:`_mm` in C (``notional`` ≥ 0): ``ceil((notional × mmr − cum) / 10⁸)`` of the first row with
    ``notional ≤ cap`` (else the last), in 128 bits; False when the result leaves int64. O(brackets)."""
    cdef int i = t.n - 1, j
    for j in range(t.n):
        if notional <= t.cap[j]:
            i = j
            break
    cdef i128 x = (<i128>notional) * t.mmr[i] - t.cum[i]
    cdef i128 q = x / 100000000  # C truncates toward zero: the ceiling for x ≤ 0
    if x % 100000000 > 0:
        q += 1
    if q > <i128>LLONG_MAX or q < <i128>LLONG_MIN:
        return False
    out[0] = <long long>q
    return True


cdef inline bint _value64(Terms t, object mark_obj, object position, bint valued_at_entry, long long *lots,
                          long long *margin, long long *upnl, long long *notional):
    """One position's size, isolated margin, ``(mark × lots − entry cost) × K`` and the notional its MM is of
    (``|entry cost| × K`` when ``valued_at_entry``, else ``|lots| × mark × K``) in int64 (``position`` None: an
    empty one); False when a value or step leaves int64 (or the mark is not an int ≥ 0), for the caller to redo
    it on Python ints. O(1)."""
    cdef long long mark, entry = 0, value, valued
    cdef PositionRec p
    lots[0] = margin[0] = 0
    if not (t.fits and _i64(mark_obj, &mark) and mark >= 0):
        return False
    if position is not None:
        p = position
        if not (_i64(p.lots, lots) and _i64(p.entry_cost, &entry) and _i64(p.isolated_margin_units, margin)):
            return False
    if mul_ovf(mark, lots[0], &value) or value == LLONG_MIN or sub_ovf(value, entry, upnl) or mul_ovf(upnl[0], t.k, upnl):
        return False
    valued = entry if valued_at_entry else value
    return valued != LLONG_MIN and not mul_ovf(valued if valued >= 0 else -valued, t.k, notional)


cdef inline bint _position64(Terms t, object mark_obj, object position, bint valued_at_entry, long long *lots,
                             long long *margin, long long *upnl, long long *mm):
    """:func:`_value64` with the MM of the notional (:func:`_mm64`) in ``mm``. O(brackets)."""
    cdef long long notional
    return _value64(t, mark_obj, position, valued_at_entry, lots, margin, upnl, &notional) and _mm64(t, notional, mm)


cdef class RiskPrice:
    """Twin of ``Exchange.risk_price`` over the exchange's books: the mark, or the last trade price until a
    mark is set. The compiled exchange hands it to the risk stage as ``mark_of``, which every margin
    evaluation calls once per position (the kernel through :meth:`price`, in C)."""

    def __init__(self, dict books):
        self.books = books

    def __call__(self, symbol):
        return self.price(symbol)

    cdef object price(self, symbol):
        cdef MatchingEngine book = self.books[symbol]
        return book.mark() or book.last_price()


cdef class RiskKernel:
    """The holds methods of one :class:`~exchange.accounts.pretrade.Risk`, over its own dicts (module docstring;
    ``_pretrade.pxd`` declares its fields and methods)."""

    def __init__(self, risk):
        self.risk = risk
        self.orders = risk._orders
        self.order_home = risk._order_home
        self.k_units = {symbol: inst.k_units for symbol, inst in risk.instruments.items()}
        self.defaults = risk.ledger._defaults
        self.keys = risk.ledger._keys
        self.brackets = risk.brackets
        self.terms = {symbol: Terms(inst.k_units, risk.brackets[symbol]) for symbol, inst in risk.instruments.items()}
        self.mark_of = risk.mark_of
        self.prices = risk.mark_of if type(risk.mark_of) is RiskPrice else None  # (then called in C: _mark)
        self.count_gains = risk.options.count_unrealized_gains
        self.open_interest_imf = risk.open_interest_imf
        self.isolated_at_entry = risk.isolated_at_entry
        self.options = risk.options
        self.orders_of = risk.orders_of
        self.strict, self.min_mm = trigger_terms(risk.trigger)

    cdef object _mark(self, symbol):
        """``mark_of(symbol)``: the compiled risk price's, called in C. O(1)."""
        if self.prices is not None:
            return self.prices.price(symbol)
        return self.mark_of(symbol)

    # -- one position (twins of Risk.notional ... Risk.part_mm; O(1), MM O(brackets)) -------------------
    cpdef object notional(self, symbol, position):
        """Twin of :meth:`Risk.notional`: ``|lots| × risk price × K`` units."""
        return _abs(position.lots) * self._mark(symbol) * self.k_units[symbol]

    cpdef object upnl(self, symbol, position):
        """Twin of :meth:`Risk.upnl`: ``(risk price × lots − entry cost) × K`` units."""
        return (self._mark(symbol) * position.lots - position.entry_cost) * self.k_units[symbol]

    cpdef object position_mm(self, symbol, position):
        """Twin of :meth:`Risk.position_mm`: the bracketed MM of the notional at the risk price."""
        return _mm(self.brackets[symbol], _abs(position.lots) * self._mark(symbol) * self.k_units[symbol])

    cpdef object isolated_mm(self, symbol, position):
        """Twin of :meth:`Risk.isolated_mm`: MM on the entry value under ``isolated_maintenance`` ENTRY, else
        :meth:`position_mm`."""
        if self.isolated_at_entry:
            return _mm(self.brackets[symbol], _abs(position.entry_cost) * self.k_units[symbol])
        return self.position_mm(symbol, position)

    cpdef object part_mm(self, account, symbol, position):
        """Twin of :meth:`Risk.part_mm`: :meth:`isolated_mm` or :meth:`position_mm` by the symbol's margin mode."""
        if self.is_isolated(account, symbol):
            return self.isolated_mm(symbol, position)
        return self.position_mm(symbol, position)

    cpdef bint is_isolated(self, account, symbol):
        """Twin of :meth:`Risk.is_isolated` (``account`` None: the default settings)."""
        settings = self.defaults[symbol] if account is None else _settings(account, symbol, self.defaults)
        return settings.margin_mode == ISOLATED

    cpdef bint is_liquidatable(self, balance_units, mm_units, exposed):
        """Twin of :meth:`Risk.is_liquidatable`: exposure and ``balance + strict ≤ MM`` and ``MM ≥ min_mm``
        (:func:`exchange.accounts.margin.trigger_terms` of the profile's trigger). O(1)."""
        return bool(exposed) and balance_units + self.strict <= mm_units and mm_units >= self.min_mm

    # -- account totals and margin parts --------------------------------------------------------------
    cpdef list cross_positions(self, account, exclude_symbol=""):
        """Twin of :meth:`Risk.cross_positions`: ``(symbol, position)`` of the cross positions by key, without
        ``exclude_symbol``. O(positions · log)."""
        cdef list out = []
        positions = account.positions
        if positions is EMPTY:
            return out
        for key in sorted(positions):
            symbol = key[0]
            if symbol != exclude_symbol and not self.is_isolated(account, symbol):
                out.append((symbol, positions[key]))
        return out

    cpdef object cross_balance(self, account):
        """Twin of :meth:`Risk.cross_balance`: wallet + Σ cross uPnL, the cross part's margin balance
        (:meth:`part_state`). O(positions)."""
        return self.part_state(account, "", BOTH_SIDE)[0]

    cpdef object cross_mm(self, account):
        """Twin of :meth:`Risk.cross_mm`: Σ MM of the cross positions at the risk price, the cross part's MM
        (:meth:`part_state`). O(positions)."""
        return self.part_state(account, "", BOTH_SIDE)[1]

    cpdef tuple part_liquidatable(self, account, symbol, side):
        """Twin of :meth:`Risk.part_liquidatable`: ``(liquidatable, margin balance, MM, has exposure)`` of a
        part (:meth:`part_state` and :meth:`is_liquidatable` in one call). O(positions)."""
        balance, mm, exposed = self.part_state(account, symbol, side)
        return self.is_liquidatable(balance, mm, exposed), balance, mm, exposed

    cpdef tuple part_state(self, account, symbol, side):
        """Twin of :meth:`Risk.part_state`: ``(margin balance, MM, has exposure)`` of the cross account
        (``symbol == ""``, one pass over the positions) or of an isolated position. O(positions)."""
        cdef bint crossed = False
        cdef long long lots64, margin64, upnl64, mm64, balance64
        cdef AccountRec acc
        if symbol == "":
            acc = <AccountRec?>account  # (None: TypeError, as the reference's AttributeError)
            balance, mm = acc.wallet_units, 0
            positions = acc.positions
            if positions is not EMPTY:
                for key, position in positions.items():
                    cross_symbol = key[0]
                    if self.is_isolated(account, cross_symbol):
                        continue
                    mark = self._mark(cross_symbol)
                    if _position64(self.terms[cross_symbol], mark, position, False, &lots64, &margin64, &upnl64,
                                   &mm64):
                        balance += upnl64
                        mm += mm64
                    else:
                        k, lots = self.k_units[cross_symbol], position.lots
                        balance += (mark * lots - position.entry_cost) * k
                        mm += _mm(self.brackets[cross_symbol], _abs(lots) * mark * k)
                    crossed = True
            return balance, mm, crossed
        position = None if account is None else _position(account, (symbol, side))
        mark = self._mark(symbol)
        if _position64(self.terms[symbol], mark, position, self.isolated_at_entry, &lots64, &margin64, &upnl64,
                       &mm64) and not add_ovf(margin64, upnl64, &balance64):
            return balance64, mm64, lots64 != 0
        if position is None:  # Ledger.position: a new empty position
            lots = entry_cost = margin_units = 0
        else:
            lots, entry_cost, margin_units = position.lots, position.entry_cost, position.isolated_margin_units
        k = self.k_units[symbol]
        valued = _abs(entry_cost) if self.isolated_at_entry else _abs(lots) * mark
        return margin_units + (mark * lots - entry_cost) * k, _mm(self.brackets[symbol], valued * k), lots != 0

    cpdef list margin_calls(self, account, states=None):
        """Twin of :meth:`Risk.margin_calls`: update the account's warned parts; a MarginCall for each part that
        reached the warning level (``states``: its :meth:`part_states` if already computed). O(positions)."""
        cdef AccountRec acc = <AccountRec?>account  # (None: TypeError)
        positions = acc.positions
        if positions is EMPTY or not positions:
            acc.warned = NO_WARNINGS
            return []
        cdef list calls = [], warned = []
        cdef long long balance64 = 0, mm64 = 0, level64 = 0
        level = self.options.margin_call_e8
        cdef bint level_fits = _i64(level, &level64)
        before = acc.warned
        for symbol, side, balance, mm in (self.part_states(account) if states is None else states):
            if level_fits and _i64(balance, &balance64) and _i64(mm, &mm64):
                if balance64 > 0 and _ratio_below(mm64, balance64, level64):  # (the int64 path of the next lines)
                    continue
            ratio = margin_ratio_e8(mm, balance, True)
            if ratio >= level:
                key = (symbol, side)
                warned.append(key)
                if key not in before:
                    calls.append(MARGIN_CALL.make((acc.account_id, symbol, side, ratio)))
        acc.warned = set(warned) if warned else NO_WARNINGS
        return calls

    # -- the bankruptcy price of a part ---------------------------------------------------------------
    cpdef object bankruptcy_price_ticks(self, account, symbol, side):
        """Twin of :meth:`Risk.bankruptcy_price_ticks`: the zero-balance price of the position's margin part,
        rounded against the account (net long: down, net short: up); None when there is no position, the net
        size is 0 or the price is ≤ 0. Exact integers (``floor(a / b) = a // b`` for any sign of ``b``), as
        :func:`exchange.accounts.margin.bankruptcy_price_ticks` on Fractions. O(positions)."""
        position = None if account is None else _position(account, (symbol, side))
        if position is None or not position.lots:
            return None
        k = self.k_units[symbol]
        if self.is_isolated(account, symbol):
            net, cost, balance = position.lots, position.entry_cost, position.isolated_margin_units
        else:
            net = cost = 0
            found = False
            positions = account.positions
            if account.position_mode == HEDGE:
                keys = ((symbol, LONG_SIDE), (symbol, SHORT_SIDE))
            else:
                keys = ((symbol, BOTH_SIDE),)
            for key in keys:  # Account.positions_in, the legs with a size (margin._legs)
                leg = positions.get(key)
                if leg is not None and leg.lots != 0:
                    net += leg.lots
                    cost += leg.entry_cost
                    found = True
            if not found:
                raise ValueError("no position: a liquidation price needs a non-zero size")
            balance = account.wallet_units
            for key, other in positions.items():  # WB + Σ uPnL of the other cross positions
                other_symbol = key[0]
                if other_symbol != symbol and not self.is_isolated(account, other_symbol):
                    balance += (self._mark(other_symbol) * other.lots - other.entry_cost) * self.k_units[other_symbol]
        if net == 0:
            return None
        num, den = cost * k - balance, net * k
        if num == 0 or (num > 0) != (den > 0):  # the price (num / den) is ≤ 0
            return None
        return num // den if net > 0 else -((-num) // den)

    cpdef list part_states(self, account):
        """Twin of :meth:`Risk.part_states`: ``(symbol, side, margin balance, MM)`` of every part with exposure,
        the cross account ("") first, then the isolated positions by key. O(positions · log)."""
        cdef AccountRec acc = <AccountRec?>account  # (None: TypeError)
        cross_balance, cross_mm = acc.wallet_units, 0
        cdef bint crossed = False, isolated_part
        cdef list isolated = []
        positions = acc.positions  # a dict, or the compiled ledger's OnePosition
        if positions is EMPTY:  # no positions (the shared read-only empty): no part
            return isolated
        cdef long long lots64, margin64, upnl64, mm64, balance64
        for key in (sorted(positions) if len(positions) > 1 else positions):
            symbol = key[0]
            position = positions[key]
            mark = self._mark(symbol)
            isolated_part = _settings(account, symbol, self.defaults).margin_mode == ISOLATED
            if _position64(self.terms[symbol], mark, position, isolated_part and self.isolated_at_entry, &lots64,
                           &margin64, &upnl64, &mm64):
                if not isolated_part:
                    cross_balance += upnl64
                    cross_mm += mm64
                    crossed = True
                elif not add_ovf(margin64, upnl64, &balance64):
                    isolated.append((symbol, key[1], balance64, mm64))
                else:
                    isolated.append((symbol, key[1], margin64 + <object>upnl64, mm64))
                continue
            k, lots = self.k_units[symbol], position.lots  # on Python ints
            upnl = (mark * lots - position.entry_cost) * k
            if isolated_part and self.isolated_at_entry:
                valued = position.entry_cost if position.entry_cost >= 0 else -position.entry_cost
            else:
                valued = (lots if lots >= 0 else -lots) * mark
            mm = _mm(self.brackets[symbol], valued * k)
            if isolated_part:
                isolated.append((symbol, key[1], position.isolated_margin_units + upnl, mm))
            else:
                cross_balance += upnl
                cross_mm += mm
                crossed = True
        if crossed:
            isolated = [("", BOTH_SIDE, cross_balance, cross_mm)] + isolated
        untrack_all(isolated, 0)
        untrack(isolated)  # (the monitor keeps every evaluated account's list through the command)
        return isolated

    cpdef object available(self, account, count_gains=None):
        """Twin of :meth:`Risk.available`: wallet − Σ holds − Σ IM of cross positions + their unrealized losses
        (and gains, per the option or ``count_gains``); 0 for no account. O(positions)."""
        if account is None:
            return 0
        cdef bint gains = self.count_gains if count_gains is None else count_gains
        cdef AccountRec acc = <AccountRec?>account  # (None: TypeError)
        cdef SettingsRec settings
        holds = acc.holds
        available = acc.wallet_units
        if type(holds) is dict:  # Σ holds over the dict itself (no view, no sum call)
            for held in (<dict>holds).values():
                available -= held
        elif holds is not EMPTY:
            available -= sum(holds.values())
        positions = acc.positions
        if positions is EMPTY:  # no positions: no IM, no unrealized PnL
            return available
        cdef long long lots64, margin64, upnl64, notional64, leverage64
        for key, position in positions.items():
            symbol = key[0]
            settings = _settings(account, symbol, self.defaults)
            if settings.margin_mode == ISOLATED:
                continue
            mark = self._mark(symbol)
            if (not self.open_interest_imf and not settings.imr_e8 and _i64(settings.leverage, &leverage64)
                    and leverage64 >= 1 and _value64(self.terms[symbol], mark, position, False, &lots64, &margin64,
                                                     &upnl64, &notional64)):  # an int leverage, in int64
                if gains or upnl64 < 0:
                    available += upnl64
                available -= -_floordiv(-notional64, leverage64)  # margin.initial_margin (notional ≥ 0)
                continue
            k, lots = self.k_units[symbol], position.lots
            upnl = (mark * lots - position.entry_cost) * k
            notional = (lots if lots >= 0 else -lots) * mark * k
            exact = settings.leverage if not settings.imr_e8 else (<object>settings).exact_leverage
            if self.open_interest_imf:
                im = self.risk.initial_margin(symbol, notional, exact)
            else:
                im = initial_margin(notional, exact)
            available += (upnl if gains or upnl < 0 else 0) - im
        return available

    cpdef object check_opening(self, account, symbol, side, order_side, price_ticks, qty_lots, replacing=0):
        """Twin of :meth:`Risk.check_opening`: -2027, -2019 or 0 for an opening order (or order ``replacing``
        amended to these values)."""
        if account is None:
            return MARGIN_INSUFFICIENT
        leverage = self._leverage(account, symbol)
        hold, adding_buy, adding_sell = self._key_hold(account, symbol, side, order_side, price_ticks, qty_lots,
                                                       replacing, leverage)
        key = self._key(symbol, side)
        position = _position(account, key)
        lots = (<PositionRec?>position).lots if position is not None else 0
        cdef bint buy = order_side == BUY
        cdef bint same_side = lots > 0 if buy else lots < 0
        exposure = (adding_buy if buy else adding_sell)
        if same_side:
            exposure += (lots if lots >= 0 else -lots) * self._mark(symbol) * self.k_units[symbol]
        rows = self.brackets[symbol]
        chosen = rows[len(rows) - 1]  # margin.max_leverage: the first bracket with notional ≤ cap, else the last
        for row in rows:
            if exposure <= row.cap_units:
                chosen = row
                break
        if chosen.max_leverage < leverage:
            return MAX_POSITION_AT_LEVERAGE
        holds = (<AccountRec?>account).holds
        held = 0 if holds is EMPTY else (<dict>holds).get(key, 0) if type(holds) is dict else holds.get(key, 0)
        raised = hold - held
        if raised > 0 and self.available(account) - raised < 0:
            return MARGIN_INSUFFICIENT
        return OK

    cdef object _leverage(self, account, symbol):
        """``Ledger.settings(account, symbol).exact_leverage``."""
        cdef SettingsRec settings = _settings(account, symbol, self.defaults)
        if not settings.imr_e8:  # SymbolSettings.exact_leverage without its Python frame
            return settings.leverage
        return (<object>settings).exact_leverage

    cdef object _key(self, symbol, side):
        """The ledger's interned position key ``(symbol, side)`` (a new tuple for a side it does not know). O(1)."""
        cdef dict sides = self.keys.get(symbol)
        key = sides.get(side) if sides is not None else None
        return key if key is not None else (symbol, side)

    cpdef tuple key_hold(self, account, symbol, side, extra=None, replacing=0, leverage=0):
        """Twin of :meth:`Risk.key_hold`: ``order_hold`` of the key's resting opening orders, without order
        ``replacing`` and with ``extra`` = (side, price, lots), at ``leverage`` (default: the account's). O(1)."""
        if extra is None:
            return self._key_hold(account, symbol, side, None, None, None, replacing, leverage)
        order_side, price_ticks, lots = extra
        return self._key_hold(account, symbol, side, order_side, price_ticks, lots, replacing, leverage)

    cdef tuple _key_hold(self, account, symbol, side, extra_side, extra_price, extra_lots, replacing, leverage):
        """:meth:`key_hold` with ``extra`` as three values (``extra_side`` None: none): in int64 from the sums'
        C fields when every value and step fits, else :meth:`_key_hold_py`. O(1)."""
        cdef OrderSums bucket = self.orders.get(((<AccountRec?>account).account_id, symbol))
        cdef long long bl = 0, bc = 0, sl = 0, sc = 0, price = 0, lots = 0, cost = 0, k = 0, lev = 1, pos = 0
        cdef long long out[3]
        out[0] = out[1] = out[2] = 0
        cdef int i = _row(side)
        cdef bint fast = i != 0 and (bucket is None or bucket.big is None)
        if fast and bucket is not None:
            bl, bc, sl, sc = bucket.c[i][0], bucket.c[i][1], bucket.c[i][2], bucket.c[i][3]
            if replacing:
                replaced = bucket.orders.get(replacing)
                if replaced is not None and replaced[0] == side and not replaced[4]:
                    fast = _i64(replaced[2], &price) and _i64(replaced[3], &lots) and not mul_ovf(price, lots, &cost)
                    if fast:
                        if replaced[1] == BUY:
                            fast = not (sub_ovf(bl, lots, &bl) or sub_ovf(bc, cost, &bc))
                        else:
                            fast = not (sub_ovf(sl, lots, &sl) or sub_ovf(sc, cost, &sc))
        if fast and extra_side is not None:
            fast = _i64(extra_price, &price) and _i64(extra_lots, &lots) and not mul_ovf(price, lots, &cost)
            if fast:
                if extra_side == BUY:
                    fast = not (add_ovf(bl, lots, &bl) or add_ovf(bc, cost, &bc))
                else:
                    fast = not (add_ovf(sl, lots, &sl) or add_ovf(sc, cost, &sc))
        if fast:
            position = _position(account, self._key(symbol, side))
            leverage_obj = leverage or self._leverage(account, symbol)
            if ((position is None or _i64((<PositionRec?>position).lots, &pos)) and type(leverage_obj) is int
                    and _i64(leverage_obj, &lev) and lev >= 1 and _i64(self.k_units[symbol], &k)
                    and _hold64(k, lev, pos, bl, bc, sl, sc, out)):
                return out[0], out[1], out[2]
        return self._key_hold_py(account, symbol, side, None if extra_side is None else (
            extra_side, extra_price, extra_lots), replacing, leverage)

    cdef tuple _key_hold_py(self, account, symbol, side, extra, replacing, leverage):
        """:meth:`key_hold` on Python ints, from :attr:`OrderSums.sums` (the reference's steps). O(1)."""
        cdef OrderSums bucket = self.orders.get((account.account_id, symbol))
        buy_lots = buy_cost = sell_lots = sell_cost = 0
        if bucket is not None:
            sums = bucket.sums.get(side)
            if sums is not None:
                buy_lots, buy_cost, sell_lots, sell_cost = sums[0], sums[1], sums[2], sums[3]
            if replacing:
                replaced = bucket.orders.get(replacing)
                if replaced is not None and replaced[0] == side and not replaced[4]:
                    if replaced[1] == BUY:
                        buy_lots, buy_cost = buy_lots - replaced[3], buy_cost - replaced[2] * replaced[3]
                    else:
                        sell_lots, sell_cost = sell_lots - replaced[3], sell_cost - replaced[2] * replaced[3]
        if extra is not None:
            order_side, price_ticks, lots = extra
            if order_side == BUY:
                buy_lots, buy_cost = buy_lots + lots, buy_cost + price_ticks * lots
            else:
                sell_lots, sell_cost = sell_lots + lots, sell_cost + price_ticks * lots
        position = account.positions.get((symbol, side))
        return _sums_hold_py(self.k_units[symbol], leverage or self._leverage(account, symbol),
                             position.lots if position is not None else 0, buy_lots, buy_cost, sell_lots, sell_cost)

    cpdef store_holds(self, account, symbol):
        """Twin of :meth:`Risk.store_holds`: recompute (from the order sums) and store the holds of the
        account's keys in ``symbol``. O(1)."""
        self.store_holds_from(account, symbol, self.sums_of((<AccountRec?>account).account_id, symbol))

    cdef object sums_of(self, account_id, symbol):
        """The account's order sums in ``symbol`` (its ``OrderSums``; None without a resting order there). O(1)."""
        return self.orders.get((account_id, symbol))

    cdef bint sums_reduce_only(self, sums) except -1:
        """:meth:`reduce_only` of the order sums ``sums_of`` returned. O(1)."""
        return sums is not None and (<OrderSums?>sums).reduce_only()

    cdef int store_holds_from(self, account, symbol, sums) except -1:
        """:meth:`store_holds` with the account's order sums in ``symbol`` already read (``sums_of``, after the
        last change to its orders there). O(1)."""
        cdef AccountRec acc = <AccountRec?>account  # (None: TypeError)
        mode = acc.position_mode
        if mode is HEDGE or mode == HEDGE:
            keys = (self._key(symbol, LONG_SIDE), self._key(symbol, SHORT_SIDE))
        else:
            keys = (self._key(symbol, BOTH_SIDE),)
        holds = acc.holds
        leverage = self._leverage(account, symbol)  # the account's, as key_hold would take it for each key
        # _key_hold's int64 path without an order to add or replace, its inputs read once for the keys: the
        # order sums, the leverage and K (any that does not fit: _key_hold_py, the Python-int path)
        cdef OrderSums bucket = sums
        cdef long long lev = 1, k = 0, pos = 0
        cdef long long out[3]
        cdef int i
        cdef bint fast = ((bucket is None or bucket.big is None) and type(leverage) is int and _i64(leverage, &lev)
                          and lev >= 1 and _i64(self.k_units[symbol], &k))
        for key in keys:
            side = key[1]
            i = _row(side)
            position = _position(account, key)
            if (fast and i != 0 and (position is None or _i64((<PositionRec?>position).lots, &pos))
                    and (_hold64(k, lev, 0 if position is None else pos, 0, 0, 0, 0, out) if bucket is None else
                         _hold64(k, lev, 0 if position is None else pos, bucket.c[i][0], bucket.c[i][1],
                                 bucket.c[i][2], bucket.c[i][3], out))):
                hold = out[0]
            else:
                hold = self._key_hold_py(account, symbol, side, None, 0, leverage)[0]
            if hold:
                if holds is EMPTY:  # Account.own_holds
                    holds = acc.holds = {}
                holds[key] = hold
            elif key in holds:
                del holds[key]
        if not holds and holds is not EMPTY:
            acc.holds = EMPTY
        return 0

    cpdef refresh_holds(self, account, symbol):
        """Twin of :meth:`Risk.refresh_holds`: re-read the account's resting orders in ``symbol`` from the book
        (``Risk.orders_of``), then :meth:`store_holds`. O(its orders there)."""
        cdef OrderSums bucket = self.orders.pop((account.account_id, symbol), None)
        if bucket is not None:
            for order_id in bucket.orders:
                del self.order_home[order_id]
        bucket = None
        for order in self.orders_of(account.account_id, symbol):  # Risk._remember of each
            if bucket is None:
                key = (account.account_id, symbol)
                bucket = self.orders.get(key)
                if bucket is None:
                    bucket = self.orders[key] = OrderSums()
                    bucket.key = key
            side = order.side
            record = (order.position_side, side if type(side) is int else int(side), order.price_ticks, order.lots,
                      True if order.reduce_only else False)
            bucket.orders[order.order_id] = record
            bucket.add(record, 1)
            self.order_home[order.order_id] = bucket.key if bucket.key is not None else (account.account_id, symbol)
        self.store_holds(account, symbol)

    cpdef track_order(self, symbol, order_id, position_side, state):
        """Twin of :meth:`Risk.track_order`: bring the order sums in line with one order of ``symbol``
        (``state``: the book's ``order(order_id)`` tuple, None once it no longer rests). O(1)."""
        cdef OrderSums bucket
        home = self.order_home.get(order_id)
        if state is None:
            record = None
        else:  # int(side) and bool(reduce only), without a call when they already are
            side = state[2]
            record = (position_side, side if type(side) is int else int(side), state[3], state[4],
                      True if state[7] else False)
        if home is not None:
            bucket = self.orders[home]
            if bucket.orders[order_id] == record:
                return
            bucket.add(bucket.orders.pop(order_id), -1)
            del self.order_home[order_id]
            if not bucket.orders:
                del self.orders[home]
        if record is not None:
            key = (state[1], symbol)
            bucket = self.orders.get(key)
            if bucket is None:
                bucket = self.orders[key] = OrderSums()
                bucket.key = key
            elif bucket.key is not None:  # the bucket's own key object: no tuple kept per order
                key = bucket.key
            bucket.orders[order_id] = record
            bucket.add(record, 1)
            self.order_home[order_id] = key

    cpdef dict order_sums(self, account_id, symbol):
        """Twin of :meth:`Risk.order_sums` (read-only; equal to the reference's dict). O(1)."""
        cdef OrderSums bucket = self.orders.get((account_id, symbol))
        return bucket.sums if bucket is not None else {}

    cpdef bint reduce_only(self, account_id, symbol):
        """Whether the account has resting reduce-only lots in ``symbol``: ``any(sums[4] or sums[5] for sums in
        order_sums(account_id, symbol).values())`` without building that dict. O(1)."""
        return self.sums_reduce_only(self.sums_of(account_id, symbol))
