"""The single sequencer: ONE asyncio task owns the engine.

Request handlers put a :class:`Job` (a list of commands with their gateway metadata, or a producer called
inside the task) on a queue and await its future. The task drains the queue into a batch, applies every
command in order (the engine journals each one), ingests the events into the records, then does a **group
commit**: the batch's client order ids go into the engine journal as one note (``JournalWriter.note``) and one
fsync of the journal makes the whole batch durable, *before* any job of the batch is answered. Then the batch's
stream messages are handed to the hub (which never blocks).

A batch of more than one job (other clients are waiting) syncs in a thread, so the event loop keeps reading
and parsing requests meanwhile (the next batch gathers); a lone job syncs inline (a thread hop would only add to
its round trip). While a batch syncs, reads wait (:meth:`Sequencer.committed`): nothing answers from state that
is not durable yet.

``--sync os`` (:attr:`Sequencer.sync_mode` ``"os"``) answers a batch once its records are written to the operating
system (each record is one ``write`` as it is applied, the note one more): a crash of the gateway process loses
nothing it answered, a power loss may lose what was answered in the last :data:`BACKGROUND_SYNC_S`. A task
fsyncs in the thread every :data:`BACKGROUND_SYNC_S` while anything is unsynced, and reads never wait. For disks
whose flush takes milliseconds, when a bot's round trip matters more than power-loss durability.

Directories written before the notes kept the client order ids in a sidecar, ``gateway-orders.jsonl``;
:func:`read_metas` still reads it.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ..engine import ExchangeHalted
from ..persistence.journal import JournalError
from .records import Outbox

MAX_BATCH = 512
SYNC_MODES = ("batch", "os")  # fsync before answering (the default) / answer once written, fsync in the background
BACKGROUND_SYNC_S = 0.1  # "os": the longest an answered record waits for its fsync (plus the fsync's own time)
NOTE_KEY = "orders"  # a journal note {"orders": [[sequence, client id, algo, good-till ms], ...]}


class Job:
    __slots__ = ("commands", "metas", "producer", "future", "events")

    def __init__(self, commands=(), metas=None, producer=None):
        self.commands = list(commands)
        self.metas = metas or [None] * len(self.commands)
        self.producer = producer  # callable(exchange) -> (commands, metas) evaluated in the engine task
        self.future = asyncio.get_running_loop().create_future()
        self.events: list[list] = []


class Sequencer:
    def __init__(self, exchange, hub, sync_mode: str = "batch"):
        if sync_mode not in SYNC_MODES:
            raise ValueError(f"sync mode must be one of {', '.join(SYNC_MODES)}, got {sync_mode!r}")
        self.sync_mode = sync_mode
        self.ex = exchange
        self.records = None  # set by Gateway.use_records
        self.hub = hub
        self.queue: deque[Job] = deque()  # jobs waiting for the engine task, which _wake wakes
        self._wake: asyncio.Future | None = None
        # the engine's durable journal writer (None without --journal), for the notes
        self._journal = exchange.journal_writer
        self._task: asyncio.Task | None = None
        self._background: asyncio.Task | None = None  # "os": the periodic fsync
        self._unsynced = False  # "os": records written since the last background fsync began
        self._syncer = ThreadPoolExecutor(1, thread_name_prefix="journal-sync")
        self._syncing = False  # a batch is applied and its sync runs in the thread
        self._readers: list[asyncio.Future] = []  # reads waiting for that sync
        self.batches = 0
        self.failed: str | None = None
        self.event_sink = None  # callable(events) for the admin event log

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="engine-sequencer")
        if self.sync_mode == "os":
            self._background = loop.create_task(self._sync_in_background(), name="journal-background-sync")

    async def submit(self, commands, metas=None) -> list[list]:
        """Apply ``commands`` (in order, atomically w.r.t. other jobs); the events of each, after the commit."""
        job = Job(commands, metas)
        self._put(job)
        return await job.future

    async def run_producer(self, producer) -> list[list]:
        job = Job(producer=producer)
        self._put(job)
        return await job.future

    def _put(self, job: Job) -> None:
        self.queue.append(job)
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def committed(self) -> None:
        """Return once no batch is applied without being durable (at once, unless one syncs in the thread)."""
        if self._syncing:
            waiter = asyncio.get_running_loop().create_future()
            self._readers.append(waiter)
            await waiter

    async def stop(self) -> None:
        for task in (self._task, self._background):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        self._syncer.shutdown(wait=True)  # a sync still running in the thread ends before the journal closes
        self.ex.sync_journal()

    async def _run(self) -> None:
        queue = self.queue
        loop = asyncio.get_running_loop()
        while True:
            if not queue:
                self._wake = loop.create_future()
                try:
                    await self._wake
                finally:
                    self._wake = None
            batch = [queue.popleft() for _ in range(min(len(queue), MAX_BATCH))]
            out = Outbox()
            lines: list[list] = []
            errors: dict[int, BaseException] = {}
            for i, job in enumerate(batch):
                try:
                    self._apply_job(job, out, lines)
                except (ExchangeHalted, JournalError) as exc:
                    self.failed = str(exc)
                    errors[i] = exc
                except Exception as exc:  # a producer bug: answer it, keep serving
                    errors[i] = exc
            off_loop = len(batch) > 1
            try:
                self._note(lines)
                if self.sync_mode == "os":
                    self._unsynced = True  # written: _sync_in_background fsyncs it
                elif off_loop:
                    await self._sync_off_loop()
                else:
                    self.ex.sync_journal()
            except (OSError, JournalError) as exc:  # the journal's sync raises JournalError
                self.failed = f"commit failed: {exc}"
                for i in range(len(batch)):
                    errors.setdefault(i, exc)
            for i, job in enumerate(batch):
                if job.future.done():
                    continue
                if i in errors:
                    job.future.set_exception(errors[i])
                else:
                    job.future.set_result(job.events)
            self.batches += 1
            try:
                self.hub.publish_batch(out)
            except Exception as exc:  # never let a stream problem stop the engine
                print(f"gateway: stream publish failed: {exc!r}", flush=True)
            if off_loop:  # the answers and the reads woken above run before the next batch is applied
                await asyncio.sleep(0)

    async def _sync_off_loop(self) -> None:
        self._syncing = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._syncer, self.ex.sync_journal)
        finally:
            self._syncing = False
            for waiter in self._readers:
                if not waiter.done():
                    waiter.set_result(None)
            self._readers.clear()

    async def _sync_in_background(self) -> None:
        """``"os"``: fsync in the thread every :data:`BACKGROUND_SYNC_S` while records were written since the last
        one (the writes go on meanwhile: ``write`` and ``fdatasync`` on one descriptor need no lock)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(BACKGROUND_SYNC_S)
            if not self._unsynced:
                continue
            self._unsynced = False
            try:
                await loop.run_in_executor(self._syncer, self.ex.sync_journal)
            except (OSError, JournalError) as exc:  # the writer is failed now: the next append raises, nothing is answered
                self.failed = f"background sync failed: {exc}"
                print(f"gateway: {self.failed}", flush=True)

    def _apply_job(self, job: Job, out: Outbox, lines: list) -> None:
        if job.producer is not None:
            job.commands, job.metas = job.producer(self.ex)
        for command, meta in zip(job.commands, job.metas):
            before = self.ex.sequence
            events = self.ex.apply(command)
            if meta is not None and self.ex.sequence != before:
                row = [self.ex.sequence, meta.get("cid", ""), bool(meta.get("algo")), int(meta.get("gtd", 0))]
                if row[1] or row[2] or row[3]:  # an order without them gets the defaults on restore too
                    lines.append(row)
            self.records.ingest(command, meta, events, out)
            if self.event_sink is not None:
                self.event_sink(events)
            job.events.append(events)

    def _note(self, rows) -> None:
        """The batch's client order ids as one journal note (the batch's sync makes it durable with the commands)."""
        if rows and self._journal is not None and not self._journal.closed:
            self._journal.note({NOTE_KEY: rows})


def read_metas(notes, sidecar_path: str) -> dict[int, dict]:
    """sequence -> gateway metadata, from the journal's notes and (a directory written before them) the sidecar
    file, whose torn last line (a crash mid-write) is ignored."""
    metas: dict[int, dict] = {}
    if os.path.exists(sidecar_path):
        with open(sidecar_path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                seq = row.pop("seq", None)
                if isinstance(seq, int):
                    metas[seq] = row
    for _, data in notes:
        if isinstance(data, dict):
            for seq, cid, algo, gtd in data.get(NOTE_KEY, ()):
                metas[seq] = {"cid": cid, "algo": algo, "gtd": gtd}
    return metas


def now_wall_ms() -> int:
    return int(time.time() * 1000)
