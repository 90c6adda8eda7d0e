"""regmix.prefetch: batches cut ahead in a thread are the batches cut inline, in the same order;
checkpoint state, failures and shutdown behave as without the thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from regmix.config import EvalConfig, MixtureConfig, ModelConfig, TrackerConfig, TrainAppConfig, TrainConfig
from regmix.corpus.config import DataConfig
from regmix.corpus.store import read_meta
from regmix.data import MixtureBatches
from regmix.mixture import Mixture
from regmix.prefetch import Prefetcher
from regmix.run_record import FINISHED
from regmix.train import train_run
from tests.support.byte_corpus import random_byte_corpus

WEIGHTS = {"a": 0.5, "b": 0.3, "c": 0.2}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return random_byte_corpus(tmp_path_factory.mktemp("corpus"), name="pf", domains=WEIGHTS,
                              train_tokens=50_000, val_tokens=5_000)


def _stream(corpus: Path, seed: int = 3) -> MixtureBatches:
    meta = read_meta(corpus)
    return MixtureBatches(corpus, meta, Mixture(WEIGHTS, domains=meta.train_domains), seq_len=32, batch_size=4, seed=seed)


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "regmix-prefetch"]


def _take(stream, n: int) -> list[torch.Tensor]:
    return [torch.cat(stream.next_batch(), dim=1) for _ in range(n)]


@pytest.mark.parametrize("depth", [1, 2, 8])
def test_prefetched_batches_are_the_inline_batches_in_order(corpus, depth):
    inline = _take(_stream(corpus), 40)
    with Prefetcher(_stream(corpus), depth=depth) as ahead:
        fetched = _take(ahead, 40)
    assert all(torch.equal(a, b) for a, b in zip(inline, fetched))
    assert not _threads()


def test_state_is_after_the_last_batch_taken_not_after_the_queued_ones(corpus):
    plain = _stream(corpus)
    _take(plain, 5)
    with Prefetcher(_stream(corpus), depth=4) as ahead:
        _take(ahead, 5)
        time.sleep(0.2)  # let the thread run ahead (its source is then 4 batches further)
        state = ahead.state_dict()
    assert state == plain.state_dict()
    # Resume from that state (as a checkpoint does), in a fresh stream and into a running one.
    resumed = Prefetcher(_stream(corpus, seed=99), depth=2)
    resumed.load_state_dict(state)
    running = Prefetcher(_stream(corpus), depth=2)
    _take(running, 7)
    running.load_state_dict(state)
    expected = _take(plain, 10)
    for stream in (resumed, running):
        assert all(torch.equal(a, b) for a, b in zip(expected, _take(stream, 10)))
        stream.close()
    assert not _threads()


class _FailsAt:
    """A batch source whose `n`-th batch raises."""

    def __init__(self, source, n: int) -> None:
        self.source, self.n, self.calls = source, n, 0

    def next_batch(self):
        self.calls += 1
        if self.calls == self.n:
            raise OSError("shard vanished")
        return self.source.next_batch()

    def state_dict(self):
        return self.source.state_dict()

    def load_state_dict(self, state):
        self.source.load_state_dict(state)


def test_a_failure_in_the_thread_is_raised_in_the_step_and_stops_the_thread(corpus):
    ahead = Prefetcher(_FailsAt(_stream(corpus), 3), depth=2)
    expected = _take(_stream(corpus), 2)
    assert all(torch.equal(a, b) for a, b in zip(expected, _take(ahead, 2)))
    with pytest.raises(OSError, match="shard vanished"):
        ahead.next_batch()
    assert not _threads()


def test_close_stops_a_thread_blocked_on_a_full_queue(corpus):
    ahead = Prefetcher(_stream(corpus), depth=1)
    ahead.next_batch()
    time.sleep(0.1)  # the thread now waits to put a batch into the full queue
    start = time.perf_counter()
    ahead.close()
    assert time.perf_counter() - start < 2 and not _threads()
    ahead.close()  # twice is fine


def test_negative_depth_is_a_user_error(corpus):
    with pytest.raises(ValueError, match="train.prefetch=-1"):
        Prefetcher(_stream(corpus), depth=-1)


def _cfg(corpus: Path, out: Path, **train) -> TrainAppConfig:
    return TrainAppConfig(
        model=ModelConfig(d_model=32, n_heads=2, d_mlp=64, max_seq_len=64),
        data=DataConfig(dir=str(corpus)),
        train=TrainConfig(**{"tokens": 12 * 8 * 64, "batch_size": 8, "micro_batch_size": 4, "seq_len": 64,
                             "lr": 3e-3, "warmup_steps": 3, "checkpoint_every": 0, **train}),
        eval=EvalConfig(tokens_per_domain=1024, batch_size=8),
        mixture=MixtureConfig(weights=WEIGHTS),
        tracker=TrackerConfig(mode="disabled"),
        out_dir=str(out),
        run_name="run",
    )


def test_a_run_with_prefetch_trains_exactly_like_one_without(corpus, tmp_path):
    inline = train_run(_cfg(corpus, tmp_path / "inline", prefetch=0), log=lambda *_: None)
    ahead = train_run(_cfg(corpus, tmp_path / "ahead"), log=lambda *_: None)
    assert inline.status == ahead.status == FINISHED
    assert ahead.val_loss == inline.val_loss
    assert 0 <= ahead.data_wait_s <= ahead.train_s and 0 < inline.data_wait_s <= inline.train_s
    assert not _threads()


@pytest.mark.gpu
def test_batches_are_pinned_for_an_asynchronous_copy_on_cuda(corpus):
    with Prefetcher(_stream(corpus), depth=2, pin_memory=True) as ahead:
        inputs, targets = ahead.next_batch()
        assert inputs.is_pinned() and targets.is_pinned()
        first = torch.cat([inputs, targets], dim=1)
    assert torch.equal(first, _take(_stream(corpus), 1)[0])
