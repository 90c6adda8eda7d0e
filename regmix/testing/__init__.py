"""Test helpers that ship with the package (tests and benchmarks both use them).

`regmix.testing.wandb_fake.FakeWandb`: a loopback fake of the W&B backend, so the real wandb
client (public API, `wandb agent`, online runs) can be exercised without a server.
"""

from regmix.testing.wandb_fake import DUMMY_API_KEY, FakeRun, FakeWandb, fake_wandb_url

__all__ = ["DUMMY_API_KEY", "FakeRun", "FakeWandb", "fake_wandb_url"]
