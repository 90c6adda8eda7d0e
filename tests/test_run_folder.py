"""`regmix-train` checks before it touches a run folder: a refused trainer (a live run's lock, a
finished run of other settings) leaves the folder as it was, Hydra's `.hydra/` included; a
read-only finished run is reported finished; no empty `train.log`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from regmix.run_lock import run_lock
from regmix.run_record import FINISHED
from tests.faults.helpers import QUICK, cli, read_only, record, small_corpus, weights_arg

MIX = weights_arg(a=0.5, b=0.3, c=0.2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return small_corpus(tmp_path_factory.mktemp("corpus") / "small")


def train(corpus: Path, cwd: Path, *extra: str):
    """regmix-train with its temporary files (Hydra's staged .hydra/) under cwd/tmp."""
    (cwd / "tmp").mkdir(exist_ok=True)
    return cli("regmix-train", "sweep=f", f"data.dir={corpus}", MIX, "run_name=r", *QUICK, "train.tokens=5120", *extra,
               cwd=cwd, env={**os.environ, "TMPDIR": str(cwd / "tmp")})


def hydra_files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / ".hydra").iterdir())}


def one_error_line(done) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_refused_trainers_leave_hydra_record_byte_identical(corpus, tmp_path):
    first = train(corpus, tmp_path, "train.lr=0.003")
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "runs" / "f" / "r"
    kept = hydra_files(run_dir)
    assert set(kept) == {"config.yaml", "hydra.yaml", "overrides.yaml"} and b"lr: 0.003" in kept["config.yaml"]

    # A finished run of other settings: refused, naming what differs.
    refused = train(corpus, tmp_path, "train.lr=0.9", "train.weight_decay=0.5")
    assert hydra_files(run_dir) == kept
    assert "train.weight_decay 0.1 -> 0.5" in one_error_line(refused)

    # A live run (its lock held): refused, its .hydra/ untouched.
    live = tmp_path / "runs" / "f" / "live"
    with run_lock(live):
        (live / ".hydra").mkdir()
        (live / ".hydra" / "config.yaml").write_text("train:\n  lr: 0.003\n")
        busy = train(corpus, tmp_path, "run_name=live", "train.lr=0.9", "model=small")
        assert "is being trained by" in one_error_line(busy)
        assert hydra_files(live) == {"config.yaml": b"train:\n  lr: 0.003\n"}
    assert not list((tmp_path / "runs").rglob("train.log"))  # job logging goes to stdout only
    assert not list((tmp_path / "tmp").glob("regmix-hydra-*"))  # no staged .hydra/ left behind


def test_read_only_finished_run_is_reported_finished(corpus, tmp_path):
    first = train(corpus, tmp_path)
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "runs" / "f" / "r"
    with read_only(run_dir):
        again = train(corpus, tmp_path)
        assert again.returncode == 0, again.stderr
        assert "already finished, nothing to train" in again.stdout
    assert record(run_dir)["status"] == FINISHED
