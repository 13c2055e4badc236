"""The agent protocol, a base class, per-agent random generators and the minimal deterministic loop."""
from __future__ import annotations

from collections import Counter
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from ...commands import AdvanceTime, SetIndexPrice, SetMarkPrice
from ...events import Rejected
from ..paths import FundingEvent, PricePath, PricePoint
from .view import MarketView


@runtime_checkable
class Agent(Protocol):
    """What :func:`run_agents` (and later runners) drive. ``rng`` is set by the runner before ``start``."""

    name: str
    accounts: tuple[int, ...]

    def start(self, view: MarketView) -> list: ...

    def act(self, view: MarketView) -> list: ...


class BaseAgent:
    """Convenience base: ``name``, ``accounts``, an ``rng`` (replaced by the runner's), no-op hooks, and a
    record of this agent's rejects (``rejects``: Counter of reject codes)."""

    def __init__(self, name: str, accounts: Sequence[int]):
        self.name = name
        self.accounts = tuple(int(a) for a in accounts)
        self.rng = np.random.default_rng(0)
        self.rejects: Counter = Counter()

    def start(self, view: MarketView) -> list:
        return []

    def act(self, view: MarketView) -> list:
        return []

    def notify(self, events: list) -> None:
        for event in events:
            if isinstance(event, Rejected) and event.account_id in self.accounts:
                self.rejects[int(event.code)] += 1


def agent_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of agent ``index`` in a run seeded ``seed``: ``default_rng(SeedSequence([seed, index]))``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


_ACCOUNT_FIELDS = ("account_id", "taker_account_id", "maker_account_id", "counterparty_id")


def _named_accounts(event) -> set:
    return {getattr(event, f) for f in _ACCOUNT_FIELDS if hasattr(event, f)}


def run_agents(exchange, path: PricePath, agents: Sequence, seed: int, on_step: Callable | None = None,
               view: MarketView | None = None, on_apply: Callable | None = None) -> dict:
    """Drive ``agents`` over ``path`` on ``exchange``; deterministic for a given seed. Returns counts.

    1. Each agent gets ``agent.rng = agent_rng(seed, i)``; then, in agent order, ``start(view)``'s commands
       are applied and the agent is notified of their events.
    2. ``path.events()`` is grouped into *steps*: the consecutive price points of one time. Per step:
       ``AdvanceTime(t)``, then per point ``SetIndexPrice`` (and ``SetMarkPrice`` when the path has a mark);
       ``view.observe()``; then each agent in order: ``notify`` with the events of the step so far that name
       one of its accounts (fills against its resting orders, its liquidations, triggered stops), ``act(view)``,
       its commands applied in order, ``notify`` with all their events. :class:`FundingEvent` items are counted
       and not applied (the exchange computes its own funding).
    3. ``on_step(view, events)`` (optional) after each step with every event of the step.
    4. ``on_apply(step, command, events)`` (optional) after every command applied (``step`` is -1 for the
       agents' ``start`` commands, then 0, 1, ...): a recorder's hook.

    Returns ``{"steps", "commands", "rejected", "event_types": Counter, "agents": [{"name", "commands",
    "rejected": Counter(code)}], "funding_events"}``.
    """
    view = view or MarketView(exchange)
    owner: dict[int, int] = {}
    for i, agent in enumerate(agents):
        for account in agent.accounts:
            if account in owner:
                raise ValueError(f"account {account} is controlled by agents {owner[account]} and {i}")
            owner[account] = i
    inbox: list[list] = [[] for _ in agents]
    counts = {"steps": 0, "commands": 0, "rejected": 0, "funding_events": 0, "event_types": Counter(),
              "agents": [{"name": a.name, "commands": 0, "rejected": Counter()} for a in agents]}

    def apply(command, issuer: int | None, sink: list) -> list:
        events = exchange.apply(command)
        if on_apply is not None:
            on_apply(counts["steps"] if started else -1, command, events)
        counts["commands"] += 1
        sink.extend(events)
        for event in events:
            counts["event_types"][type(event).__name__] += 1
            if isinstance(event, Rejected) and issuer is not None:
                counts["rejected"] += 1
                counts["agents"][issuer]["rejected"][int(event.code)] += 1
            for account in _named_accounts(event):
                j = owner.get(account)
                if j is not None and j != issuer:
                    if not inbox[j] or inbox[j][-1] is not event:
                        inbox[j].append(event)
        return events

    def run_agent(i: int, commands, step_events: list) -> None:
        agent = agents[i]
        mine: list = []
        for command in commands or ():
            counts["agents"][i]["commands"] += 1
            mine.extend(apply(command, i, step_events))
        notify = getattr(agent, "notify", None)
        if notify is not None and mine:
            notify(mine)

    def flush(i: int) -> None:
        notify = getattr(agents[i], "notify", None)
        if inbox[i]:
            batch, inbox[i] = inbox[i], []
            if notify is not None:
                notify(batch)

    for i, agent in enumerate(agents):
        agent.rng = agent_rng(seed, i)
    started = False
    start_events: list = []
    for i, agent in enumerate(agents):
        run_agent(i, agent.start(view), start_events)
    started = True

    def do_step(points: list) -> None:
        step_events: list = []
        t = points[0].time_ns
        if t >= exchange.now_ns:
            apply(AdvanceTime(t), None, step_events)
        for p in points:
            apply(SetIndexPrice(p.symbol, p.index_ticks), None, step_events)
            if p.mark_ticks is not None:
                apply(SetMarkPrice(p.symbol, p.mark_ticks), None, step_events)
        view.observe()
        for i, agent in enumerate(agents):
            flush(i)
            run_agent(i, agent.act(view), step_events)
        counts["steps"] += 1
        if on_step is not None:
            on_step(view, step_events)

    pending: list[PricePoint] = []
    for item in path.events():
        if isinstance(item, FundingEvent):
            counts["funding_events"] += 1
            continue
        if pending and item.time_ns != pending[0].time_ns:
            do_step(pending)
            pending = []
        pending.append(item)
    if pending:
        do_step(pending)
    for i in range(len(agents)):
        flush(i)
    return counts


