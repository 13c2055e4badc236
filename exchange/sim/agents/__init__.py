"""Agents that trade against the simulator through commands only (docs/agents.md).

- :class:`MarketView`: a read-only view over an :class:`~exchange.Exchange` a runner builds once and
  :meth:`MarketView.observe` updates once per step (prices, books, accounts, a realised volatility estimate).
- :class:`Agent`: the protocol. ``name`` (cohort label), ``accounts``, ``start(view)``, ``act(view)`` return
  lists of commands; ``notify(events)`` (optional) receives events. The runner gives each agent its own
  ``numpy.random.Generator`` (``agent.rng``) from ``(seed, agent index)``.
- :func:`run_agents`: a minimal deterministic loop over ``path.events()``.
- Agents: :class:`MarketMaker`, :class:`Arbitrageur`, :class:`NoiseTaker`, :class:`MomentumTaker`,
  :class:`LeveragedTrader` with a margin policy (:class:`IsolatedPolicy`, :class:`CrossPolicy`,
  :class:`HybridPolicy`, :class:`DynamicPolicy`) and a seeded :func:`intention_schedule`.

Agents never touch the exchange: they read the view and return commands. Everything they compute from
prices is integer (ticks, lots, units) except the volatility estimate and the agents' random draws, which
only decide *which* integer command is sent; a run is a pure function of (exchange set-up, path, agents,
seed), on either implementation.
"""
from .base import Agent, BaseAgent, agent_rng, run_agents
from .maker import MarketMaker
from .takers import Arbitrageur, MomentumTaker, NoiseTaker
from .trader import (
    CrossPolicy, DynamicPolicy, HybridPolicy, Intention, IsolatedPolicy, LeveragedTrader, MarginPolicy,
    intention_schedule,
)
from .view import MarketView

__all__ = [
    "MarketView", "Agent", "BaseAgent", "agent_rng", "run_agents",
    "MarketMaker", "Arbitrageur", "NoiseTaker", "MomentumTaker",
    "Intention", "intention_schedule", "LeveragedTrader",
    "MarginPolicy", "IsolatedPolicy", "CrossPolicy", "HybridPolicy", "DynamicPolicy",
]

