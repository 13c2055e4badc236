# cython: language_level=3
"""The ledger's slotted records (``exchange/accounts/ledger.py``: ``Account``, ``Position``, ``SymbolSettings``)
as C structs, for the compiled twins to ``cimport`` (declarations only; no module of its own).

A slotted class keeps each field at a fixed offset after the object header, CPython lays the slots out in
sorted name order, and every constructor of these classes sets every field. Typed as one of these extension
types, ``account.wallet_units`` is a load from that offset instead of an attribute lookup through the type
(about 150 instructions each), and a store keeps the reference counts as the slot's descriptor would.

Use: ``cimport`` the types under another name (``from exchange.accounts._ledger cimport Position as
PositionRec``: the module keeps its Python names), call :func:`check_layout` once at import (it raises if the
classes no longer match these structs; Cython already refuses a size mismatch), and assign an object to a
typed variable only after checking it is not None (attribute access on None is not checked here).
"""
from exchange._records cimport check_slots

cdef extern from *:
    """
    #include <stddef.h>
    typedef struct { PyObject_HEAD PyObject *account_id; PyObject *holds; PyObject *position_mode;
                     PyObject *positions; PyObject *settings; PyObject *wallet_units; PyObject *warned; } exch_Account;
    typedef struct { PyObject_HEAD PyObject *entry_cost; PyObject *isolated_margin_units;
                     PyObject *lots; } exch_Position;
    typedef struct { PyObject_HEAD PyObject *imr_e8; PyObject *leverage; PyObject *margin_mode; } exch_Settings;
    #define EXCH_OFFSETS_ACCOUNT {offsetof(exch_Account, account_id), offsetof(exch_Account, holds), \
        offsetof(exch_Account, position_mode), offsetof(exch_Account, positions), offsetof(exch_Account, settings), \
        offsetof(exch_Account, wallet_units), offsetof(exch_Account, warned)}
    #define EXCH_OFFSETS_POSITION {offsetof(exch_Position, entry_cost), \
        offsetof(exch_Position, isolated_margin_units), offsetof(exch_Position, lots)}
    #define EXCH_OFFSETS_SETTINGS {offsetof(exch_Settings, imr_e8), offsetof(exch_Settings, leverage), \
        offsetof(exch_Settings, margin_mode)}
    static const Py_ssize_t exch_account_offsets[] = EXCH_OFFSETS_ACCOUNT;
    static const Py_ssize_t exch_position_offsets[] = EXCH_OFFSETS_POSITION;
    static const Py_ssize_t exch_settings_offsets[] = EXCH_OFFSETS_SETTINGS;
    """
    ctypedef class exchange.accounts.ledger.Account [object exch_Account, check_size error]:
        cdef object account_id
        cdef object holds
        cdef object position_mode
        cdef object positions
        cdef object settings
        cdef object wallet_units
        cdef object warned

    ctypedef class exchange.accounts.ledger.Position [object exch_Position, check_size error]:
        cdef object entry_cost
        cdef object isolated_margin_units
        cdef object lots

    ctypedef class exchange.accounts.ledger.SymbolSettings [object exch_Settings, check_size error]:
        cdef object imr_e8
        cdef object leverage
        cdef object margin_mode

    const Py_ssize_t exch_account_offsets[7]
    const Py_ssize_t exch_position_offsets[3]
    const Py_ssize_t exch_settings_offsets[3]


cdef inline int check_layout() except -1:
    """Raise ImportError unless every field of the three classes sits where its struct says."""
    where = "exchange/accounts/_ledger.pxd"
    check_slots(Account, ("account_id", "holds", "position_mode", "positions", "settings", "wallet_units", "warned"),
                exch_account_offsets, where)
    check_slots(Position, ("entry_cost", "isolated_margin_units", "lots"), exch_position_offsets, where)
    check_slots(SymbolSettings, ("imr_e8", "leverage", "margin_mode"), exch_settings_offsets, where)
    return 0
