"""Order helpers shared by the agents: the price band around the mark, min notional, sides."""
from __future__ import annotations

from ...enums import Side
from ...units import E8


def band_buy_max(inst, mark: int) -> int:
    """Highest buy limit the band allows: floor(mark × up)."""
    return mark * inst.band_up_e8 // E8 if mark else inst.max_price_ticks


def band_sell_min(inst, mark: int) -> int:
    """Lowest sell limit the band allows: ceil(mark × down)."""
    return -(-mark * inst.band_down_e8 // E8) if mark else inst.min_price_ticks


def min_lots(inst, price_ticks: int) -> int:
    """Fewest lots whose notional at ``price_ticks`` meets min notional (and the min quantity)."""
    need = -(-inst.min_notional_units // (price_ticks * inst.k_units)) if price_ticks > 0 else inst.min_qty_lots
    return max(inst.min_qty_lots, need)


def scale_e8(price: int, rate_e8: int) -> int:
    return price * rate_e8 // E8


def side_of(sign: int) -> Side:
    return Side.BUY if sign > 0 else Side.SELL


