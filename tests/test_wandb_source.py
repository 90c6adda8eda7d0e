"""Contract test 1: the real `wandb.Api`, through the project's W&B source, against the fake backend."""

from __future__ import annotations

import json
import math

import pytest

from analysis.sources.wandb_api import (
    WandbSourceConfig,
    WandbSourceError,
    load_wandb_runs,
    pull_wandb_runs,
    record_from_run,
)
from tests.fakes import DUMMY_API_KEY, FakeWandb

DOMAINS = ("arxiv", "github", "pile_cc")
SWEEP = "swp12345"
N_FINISHED, N_CRASHED, N_FAILED, N_RUNNING = 400, 25, 15, 10  # 450 runs in the sweep
PER_PAGE = 50
SETUP_REQUESTS = 3
"""Requests besides pages: the login check (Viewer) and the default entity, with one spare."""


def weights_for(index: int) -> dict[str, float]:
    """A distinct, valid mixture per index (sums to 1 exactly in binary for these fractions)."""
    a = (index % 8) / 16
    return {"arxiv": a, "github": 0.5 - a, "pile_cc": 0.5}


def add_proxy_run(fake: FakeWandb, index: int, *, state: str = "finished", sweep: str | None = SWEEP, **kw):
    """A run as the training app logs it, including the agent's flat sweep key."""
    config = {
        "mixture": {"index": index, "weights": weights_for(index), "name": None},
        # `wandb agent` merges the swept parameter in flat; its value must never be used.
        "mixture.index": index + 1000,
        "model": {"name": "tiny", "n_layers": 2},
        "corpus": {"name": "synthetic", "path": "data/synthetic", "content_hash": "abc", "tokenizer": "bytes"},
        "sweep": "demo",
        "run_name": f"mix{index:04d}",
        "seed": 0,
        "n_params": {"total": 1000, "non_embedding": 500},
    }
    summary = {f"val/{d}/loss": 2.0 + index / 1000 + i for i, d in enumerate(DOMAINS)}
    summary.update({"val/loss": 3.0, "tokens": 65536, "_runtime": 12.5})
    return fake.add_run(config=config, summary=summary, state=state, sweep=sweep, **kw)


def fast_config(**overrides) -> WandbSourceConfig:
    """Per-request retries short, so a failure is seconds, not minutes."""
    base = dict(project="regmix", entity="regmix-tests", retries=1, retry_wait_s=1, retry_wait_max_s=1, timeout_s=20)
    base.update(overrides)
    return WandbSourceConfig(**base)


@pytest.fixture
def fake(monkeypatch):
    with FakeWandb() as backend:
        monkeypatch.setenv("WANDB_BASE_URL", backend.url)
        monkeypatch.setenv("WANDB_API_KEY", DUMMY_API_KEY)
        yield backend
    assert not backend.is_running, "the fake's server thread must stop at teardown"


@pytest.fixture
def sweep_of_450(fake):
    index = 0
    for state, count in (("finished", N_FINISHED), ("crashed", N_CRASHED), ("failed", N_FAILED), ("running", N_RUNNING)):
        for _ in range(count):
            add_proxy_run(fake, index, state=state)
            index += 1
    for other in range(30):  # finished runs of another sweep: never pulled
        add_proxy_run(fake, 5000 + other, sweep="othersw1")
    fake.reset_counts()
    return fake


def test_pulls_hundreds_of_runs_in_pages_of_finished_runs_only(sweep_of_450):
    fake = sweep_of_450
    pull = pull_wandb_runs(fast_config(sweep=SWEEP, per_page=PER_PAGE))

    expected_ids = {r.name for r in fake.runs.values() if r.sweep == SWEEP and r.state == "finished"}
    got_ids = [rec.wandb["id"] for rec in pull.records]
    assert len(got_ids) == N_FINISHED and set(got_ids) == expected_ids
    # Pages only: one request per page of finished runs, no request per run.
    pages = math.ceil(N_FINISHED / PER_PAGE)
    assert fake.request_counts["Runs"] == pages
    assert fake.request_counts["Run"] == 0
    assert fake.graphql_requests <= pages + SETUP_REQUESTS
    assert pull.skipped == {}


def test_weights_come_from_the_nested_config_never_the_flat_sweep_key(sweep_of_450):
    records = load_wandb_runs(fast_config(sweep=SWEEP, per_page=PER_PAGE), log=lambda line: None)
    for rec in records:
        index = rec.mixture_index
        assert index < N_FINISHED  # the flat "mixture.index" holds index + 1000
        assert rec.mixture == weights_for(index)
        assert rec.val_loss == pytest.approx({d: 2.0 + index / 1000 + i for i, d in enumerate(DOMAINS)})
        assert "mean" not in rec.val_loss
        assert rec.status == "finished" and rec.tokens == 65536 and rec.model == "tiny"
        assert rec.run_name == f"mix{index:04d}" and rec.sweep == "demo"
        assert rec.wandb["sweep_id"] == SWEEP and rec.wandb["project"] == "regmix"
        assert rec.corpus["content_hash"] == "abc"


def test_group_and_tag_selectors(fake):
    for i in range(6):
        add_proxy_run(fake, i, sweep=None, group="g1" if i < 4 else "g2", tags=["keep"] if i % 2 else [])
    add_proxy_run(fake, 99, sweep=None, group="g1", state="failed")

    by_group = pull_wandb_runs(fast_config(group="g1"))
    assert sorted(r.mixture_index for r in by_group.records) == [0, 1, 2, 3]
    by_tag = pull_wandb_runs(fast_config(tags=["keep"]))
    assert sorted(r.mixture_index for r in by_tag.records) == [1, 3, 5]
    both = pull_wandb_runs(fast_config(group="g1", tags=["keep"]))
    assert sorted(r.mixture_index for r in both.records) == [1, 3]
    rounds = pull_wandb_runs(fast_config(group=["g1", "g2"]))  # the rounds of an active search
    assert sorted(r.mixture_index for r in rounds.records) == [0, 1, 2, 3, 4, 5]


def test_runs_without_weights_or_losses_are_skipped_and_reported(fake):
    add_proxy_run(fake, 0)
    fake.add_run(config={"mixture": {"index": 1}}, summary={"val/arxiv/loss": 1.0}, sweep=SWEEP)
    fake.add_run(config={"mixture.index": 2}, summary={"val/arxiv/loss": 1.0}, sweep=SWEEP)
    no_loss = fake.add_run(config={"mixture": {"weights": weights_for(3)}}, summary={"tokens": 5}, sweep=SWEEP)
    lines: list[str] = []

    records = load_wandb_runs(fast_config(sweep=SWEEP), log=lines.append)

    assert [r.mixture_index for r in records] == [0]
    pull = pull_wandb_runs(fast_config(sweep=SWEEP))
    assert {reason: len(ids) for reason, ids in pull.skipped.items()} == {
        "no mixture.weights in the run config": 2,
        "no val/<domain>/loss in the run summary": 1,
    }
    assert no_loss.name in pull.skipped["no val/<domain>/loss in the run summary"]
    assert len(lines) == 1 and "1 finished runs, 3 skipped" in lines[0]


def test_api_key_never_appears_in_what_the_source_returns_or_logs(sweep_of_450, capsys):
    lines: list[str] = []
    records = load_wandb_runs(fast_config(sweep=SWEEP, per_page=PER_PAGE), log=lines.append)
    captured = capsys.readouterr()
    for text in (json.dumps([r.to_dict() for r in records]), "\n".join(lines), captured.out, captured.err, repr(sweep_of_450.request_log)):
        assert DUMMY_API_KEY not in text


def test_a_flaky_server_is_retried_and_a_dead_one_fails_with_one_clear_line(sweep_of_450):
    fake = sweep_of_450
    fake.fail_next("Runs", 1)  # one HTTP 500: the client's own retry absorbs it
    assert len(pull_wandb_runs(fast_config(sweep=SWEEP, per_page=PER_PAGE)).records) == N_FINISHED

    fake.fail_next("Runs", 2)  # retries=1 exhausted once: the whole pull starts again
    lines: list[str] = []
    pull = pull_wandb_runs(fast_config(sweep=SWEEP, per_page=PER_PAGE, pull_attempts=2), log=lines.append)
    assert len(pull.records) == N_FINISHED and "starting it again (2/2)" in lines[0]

    fake.fail_next("Runs", 100)
    with pytest.raises(WandbSourceError, match=r"regmix-tests/regmix after 2 attempt\(s\).*wandb.retries"):
        pull_wandb_runs(fast_config(sweep=SWEEP, per_page=PER_PAGE, pull_attempts=2))


def test_wrong_project_bad_key_and_missing_selector_are_user_errors(fake, monkeypatch):
    with pytest.raises(WandbSourceError, match="check source.wandb.entity and source.wandb.project"):
        pull_wandb_runs(fast_config(project="no-such-project", sweep=SWEEP))
    with pytest.raises(WandbSourceError, match="needs a selector"):
        pull_wandb_runs(fast_config())
    with pytest.raises(WandbSourceError, match="retries=0"):
        pull_wandb_runs(fast_config(sweep=SWEEP, retries=0))
    monkeypatch.setenv("WANDB_API_KEY", "f" * 40)
    with pytest.raises(WandbSourceError, match="WANDB_API_KEY") as err:
        pull_wandb_runs(fast_config(sweep=SWEEP))
    assert "f" * 40 not in str(err.value)
    assert fake.auth_failures >= 1


def test_record_from_run_handles_what_an_agent_does_to_a_config():
    common = dict(run_id="abc", display_name="x", state="finished", sweep_id="s", entity="e", project="p", url=None)
    config = {
        "mixture": {"index": 3, "weights": {"a": 0.25, "b": 0.75}},
        "model": "1m",  # a swept parameter named like a config group replaced the dict
        "data": {"name": "pile", "dir": "data/pile", "tokenizer": {"kind": "bpe"}},
    }
    record, reason = record_from_run(config=config, summary={"val/a/loss": 1.5, "train/tokens": 10}, **common)
    assert reason == "" and record.model == "1m" and record.tokens == 10
    assert record.corpus == {"name": "pile", "path": "data/pile", "content_hash": None, "tokenizer": "bpe"}

    bad = {**config, "mixture": {"weights": {"a": 0.9, "b": 0.9}}}
    assert record_from_run(config=bad, summary={"val/a/loss": 1.5}, **common)[1].startswith("invalid mixture.weights")
    nan = record_from_run(config=config, summary={"val/a/loss": float("nan")}, **common)
    assert nan[0] is None and "non-finite" in nan[1]
    assert record_from_run(config=config, summary={"val/loss": 1.0}, **common)[1].startswith("no val/")


def test_a_domain_named_mean_is_kept_and_the_mean_is_not_a_domain():
    common = dict(run_id="abc", display_name="x", state="finished", sweep_id="s", entity="e", project="p", url=None)
    config = {"mixture": {"index": 0, "weights": {"mean": 0.5, "b": 0.5}}, "model": {"name": "tiny"}}
    summary = {"val/mean/loss": 2.5, "val/b/loss": 3.5, "val/loss": 3.0, "tokens": 10}
    record, reason = record_from_run(config=config, summary=summary, **common)
    assert reason == "" and record.val_loss == {"mean": 2.5, "b": 3.5}
