"""Batches for proxy training and the fixed validation slices, read from memory-mapped shards."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from regmix.corpus.store import CorpusError, CorpusMeta, open_shard
from regmix.mixture import Mixture, check_domains


class MixtureBatches:
    """Endless training batches: each sequence's domain is drawn by the mixture weights (as in
    the paper), then a random window of `seq_len + 1` tokens is cut from that domain's shard.

    Only domains with positive weight are opened. Batches are int64 tensors (inputs, targets)
    of shape (batch_size, seq_len), on CPU; the caller moves them to the device.
    """

    def __init__(
        self,
        corpus_dir: str | os.PathLike,
        meta: CorpusMeta,
        mixture: Mixture,
        *,
        seq_len: int,
        batch_size: int,
        seed: int,
    ) -> None:
        check_domains(mixture, meta.train_domains, what="mixture")
        self.domains = [d for d in meta.train_domains if mixture.get(d) > 0]
        weights = np.array([mixture[d] for d in self.domains], dtype=np.float64)
        self.probs = weights / weights.sum()
        self.shards = [open_shard(corpus_dir, meta, d, "train") for d in self.domains]
        for domain, shard in zip(self.domains, self.shards):
            if len(shard) <= seq_len + 1:
                raise CorpusError(
                    f"domain {domain!r} has {len(shard)} training tokens, fewer than one sequence of "
                    f"{seq_len + 1}; lower train.seq_len or give the domain more text"
                )
        self.seq_len, self.batch_size = seq_len, batch_size
        self.rng = np.random.default_rng(seed)
        self._offsets = np.arange(seq_len + 1)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        which = self.rng.choice(len(self.domains), size=self.batch_size, p=self.probs)
        rows = np.empty((self.batch_size, self.seq_len + 1), dtype=np.int64)
        for i in np.unique(which):
            slots = np.flatnonzero(which == i)
            shard = self.shards[i]
            starts = self.rng.integers(0, len(shard) - self.seq_len - 1, size=slots.size)
            rows[slots] = shard[starts[:, None] + self._offsets]
        batch = torch.from_numpy(rows)
        return batch[:, :-1], batch[:, 1:]

    def state_dict(self) -> dict:
        """Where the stream stands: the generator's state (a checkpoint resumes the same batches)."""
        return {"domains": list(self.domains), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        if list(state["domains"]) != self.domains:
            raise ValueError(f"data state is for domains {state['domains']}, this stream draws from {self.domains}")
        self.rng.bit_generator.state = state["rng"]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.next_batch()


def validation_windows(
    corpus_dir: str | os.PathLike, meta: CorpusMeta, domain: str, *, tokens: int, seq_len: int
) -> torch.Tensor:
    """The fixed validation slice of a domain: its first `tokens` validation tokens cut into
    windows of seq_len + 1 (stride seq_len), identical for every run on this corpus."""
    shard = open_shard(corpus_dir, meta, domain, "val")
    if len(shard) < tokens + 1:
        raise CorpusError(
            f"domain {domain!r} has {len(shard)} validation tokens, fewer than the evaluation slice "
            f"eval.tokens_per_domain={tokens}; lower eval.tokens_per_domain or give the domain more text"
        )
    n_windows = max(tokens // seq_len, 1)
    starts = np.arange(n_windows) * seq_len
    rows = np.asarray(shard[starts[:, None] + np.arange(seq_len + 1)], dtype=np.int64)
    return torch.from_numpy(rows)
