"""Training batches cut ahead of the step: a background thread fills a bounded queue.

The step loop asks `next_batch()` and mostly finds the batch ready, so cutting windows out of
the memory-mapped shards (and pinning them for the copy to a GPU) overlaps the step instead of
stalling it, as a `DataLoader` with `pin_memory=True` and one worker would. One thread, not
worker processes: a batch is one numpy gather that releases the GIL, and the batch stream must
stay the single seeded stream `MixtureBatches` draws (the same batches, in the same order, with
or without prefetch).

The thread runs ahead of the step, so the source's own generator state is ahead too; the
state that a checkpoint needs, the one after the last batch the step took, travels in the
queue beside each batch (`state_dict`).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Protocol

import torch

from regmix.errors import SettingsError

_PUT_POLL_S = 0.1
"""How often (seconds) a producer blocked on a full queue checks whether it was told to stop."""


class BatchSource(Protocol):
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class _Failed:
    """An exception raised in the producer, handed to the consumer to re-raise."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Prefetcher:
    """`source`'s batches, `depth` of them cut ahead in a background thread (`depth=0`: cut
    inline, as before). `pin_memory` pins each batch (CUDA) so that the loop's
    `.to(device, non_blocking=True)` copies asynchronously.

    `wait_s` adds up the seconds `next_batch` blocked the caller: the step's data wait.
    Use as a context manager, or call `close()`: the thread stops at once (it is a daemon, so a
    forgotten one never keeps the process alive either).
    """

    def __init__(self, source: BatchSource, *, depth: int = 2, pin_memory: bool = False) -> None:
        if depth < 0:
            raise SettingsError(f"train.prefetch={depth}; use 0 (cut each batch inside the step) or more batches ahead")
        self.source, self.depth, self.pin_memory = source, depth, pin_memory
        self.wait_s = 0.0
        self._state = source.state_dict()  # the stream's state after the last batch handed out
        self._queue: queue.Queue | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _cut(self) -> tuple[tuple[torch.Tensor, torch.Tensor], dict]:
        inputs, targets = self.source.next_batch()
        if self.pin_memory:
            inputs, targets = inputs.pin_memory(), targets.pin_memory()
        return (inputs, targets), self.source.state_dict()

    def _produce(self, out: queue.Queue, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                item: Any = self._cut()
            except BaseException as exc:  # handed to the step loop, which raises it there
                item = _Failed(exc)
            while not stop.is_set():
                try:
                    out.put(item, timeout=_PUT_POLL_S)
                    break
                except queue.Full:
                    continue
            if isinstance(item, _Failed):
                return

    def _start(self) -> None:
        self._stop = threading.Event()
        self._queue = queue.Queue(maxsize=self.depth)
        self._thread = threading.Thread(target=self._produce, args=(self._queue, self._stop),
                                        name="regmix-prefetch", daemon=True)
        self._thread.start()

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        start = time.perf_counter()
        if self.depth == 0:
            batch, self._state = self._cut()
        else:
            if self._thread is None:
                self._start()
            item = self._queue.get()
            if isinstance(item, _Failed):
                self.close()
                raise item.exc
            batch, self._state = item
        self.wait_s += time.perf_counter() - start
        return batch

    def state_dict(self) -> dict:
        """The stream's state after the last batch the caller took (not after the ones queued)."""
        return self._state

    def load_state_dict(self, state: dict) -> None:
        """Continue the stream from `state`: batches cut ahead from the old state are dropped."""
        self.close()
        self.source.load_state_dict(state)
        self._state = self.source.state_dict()

    def close(self) -> None:
        """Stop the thread and drop what it cut ahead; a later `next_batch` starts it again,
        from the state after the last batch handed out."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread, self._queue = None, None
        self.source.load_state_dict(self._state)

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
