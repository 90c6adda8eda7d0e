"""Fakes at the network edge, for tests and benchmarks only (never shipped in the wheel).

`FakeWandb` (`tests.fakes.wandb_fake`): a loopback fake of the W&B backend, so the real wandb
client (public API, `wandb agent`, online runs) can be exercised without a server.
"""

from .wandb_fake import DUMMY_API_KEY, FakeRun, FakeWandb, fake_wandb_url

__all__ = ["DUMMY_API_KEY", "FakeRun", "FakeWandb", "fake_wandb_url"]
