"""regmix-demo in a reduced mode: the whole loop runs, reports, and resumes without retraining."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
# 8 proxies + a round of 4, 20k tokens each, target runs of 40k tokens, 20k candidates: the loop in ~1-2 minutes.
REDUCED = [
    "n_mixtures=8",
    "round_k=4",
    "proxy_train.tokens=20480",
    "target_train.tokens=40960",
    "eval_tokens=4096",
    "n_rank_check=1",
    "fit.simulation.n_candidates=20000",
    "fit.plots=false",
]


def demo(work: Path, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "regmix-demo"), "out_dir=out", *REDUCED, *extra], cwd=work,
                          capture_output=True, text=True, timeout=900, **kwargs)


def finished_stamps(out: Path) -> dict[Path, int]:
    stamps = {}
    for path in out.rglob("result.json"):
        if json.loads(path.read_text())["status"] == "finished":
            stamps[path] = path.stat().st_mtime_ns
    return stamps


@pytest.mark.slow
def test_interrupted_demo_resumes_without_retraining_and_reports(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([str(BIN / "regmix-demo"), "out_dir=out", *REDUCED], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(finished_stamps(out)) < 2:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group, workers included
    proc.wait(timeout=120)
    before = finished_stamps(out)
    assert len(before) >= 2
    for path in out.rglob("result.json"):  # nothing half-written: every record parses
        assert json.loads(path.read_text())["status"] in ("finished", "failed", "preempted")

    done = demo(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in before} == before  # finished runs were not retrained

    report = (out / "report.md").read_text()
    for section in ("## Verdict", "## The active round", "## Target loss at target scale", "## Mixtures",
                    "## Regression", "No per-domain floor"):  # domain_floor=0 by default
        assert section in report
    assert "**The round " in report  # says whether the round improved the choice
    assert (out / "losses.png").stat().st_size > 0 and (out / "weights.png").stat().st_size > 0
    for label in ("emitted", "prior", "uniform", "best_proxy", "emitted before round", "before the round",
                  "after the round"):
        assert f"| {label} " in report  # a table row (cells are padded to the column's width)
    assert len(list((out / "proxy" / "demo").glob("mix*/result.json"))) == 8
    assert len(list((out / "proxy" / "demo_r1").glob("mix*/result.json"))) == 4
    assert (out / "sweeps" / "demo_r1.mixtures.csv").is_file() and (out / "mixture" / "demo_r0.yaml").is_file()
    # Two seeds of each rival at target scale: the noise is pooled, the verdict compares means.
    for label in ("emitted", "prior", "uniform", "emitted_before_round"):
        assert len(list((out / "target").glob(f"{label}-*-s1/result.json"))) == 1
    emitted = out / "mixture" / "demo.yaml"
    assert emitted.is_file()
    # Offline W&B runs are there for `wandb sync`.
    assert list((out / "target").glob("*/wandb/offline-run-*/run-*.wandb"))

    stamps = finished_stamps(out)
    again = demo(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # a full rerun trains nothing


def test_demo_bad_input_is_one_line(tmp_path):
    done = demo(tmp_path, "n_mixtures=0")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "n_mixtures" in lines[0]


def test_pooled_noise_is_the_rms_seed_difference():
    from regmix.demo.pipeline import pooled_noise

    # Two seeds each: the RMS of the two differences (0.1 and 0.3); single-seed mixtures do not count.
    assert pooled_noise({"a": [2.0, 2.1], "b": [3.0, 2.7], "c": [1.0]}) == pytest.approx((0.5 * (0.01 + 0.09)) ** 0.5)
    assert pooled_noise({"a": [2.0, 2.4]}) == pytest.approx(0.4)  # one pair: |seed 0 - seed 1|
    assert pooled_noise({"a": [2.0]}) != pooled_noise({"a": [2.0]})  # NaN: nothing repeated


def test_forecasts_say_when_the_emitted_mixture_is_the_best_proxy(tmp_path):
    """A fit that fell back to the best run emits that run's mixture: the report says so instead of
    a 50% forecast (ties count half) and a 'came true' that compares a mixture with itself."""
    from types import SimpleNamespace

    from regmix.demo.report import SAME_MIXTURE, DemoOutcome
    from regmix.mixture import Mixture

    best = Mixture({"a": 0.7, "b": 0.3})
    zero = {"low": 0.0, "mean": 0.0, "high": 0.0}
    evidence = {"emitted": {"probability_beats": {"prior": 0.9, "best_run": 0.5},
                            "loss_difference": {"prior": {"low": -0.3, "mean": -0.2, "high": -0.1}, "best_run": zero}}}
    outcome = DemoOutcome(
        target="t", blend={"a": 1.0}, mixtures={"emitted": best, "best_proxy": best, "prior": Mixture({"a": 0.5, "b": 0.5}),
                                                  "uniform": Mixture({"a": 0.5, "b": 0.5})},
        at_target={"emitted": 2.0, "best_proxy": 2.02, "prior": 2.5, "uniform": 2.5},
        at_proxy={"emitted": 3.0, "best_proxy": 3.0, "prior": 3.4, "uniform": 3.4},
        noise=0.1, rank_spearman=1.0, fit=SimpleNamespace(evidence=evidence, status_line="status: fallback"),
        n_proxies=8, wall_s=60.0, out_dir=tmp_path, seed_losses={"emitted": [2.02, 1.98]},
    )
    rows = {row[0]: row for row in outcome.forecasts()}
    assert rows["prior"][1:4] == ["90%", "yes", "yes"]
    assert rows["best_proxy"][1:4] == [SAME_MIXTURE, "-", "-"]
    text = outcome.summary()
    assert "emitted is best_proxy's mixture: no forecast" in text and "P(emitted beats best_proxy)" not in text


def test_a_failed_verdict_says_how_close_it_was_and_what_the_fit_had_forecast(tmp_path):
    """'[ ] beats uniform' alone reads as a failure of the method; the report says whether the fit
    had called it a close race (and it was one) or had claimed a win that did not come."""
    from types import SimpleNamespace

    from regmix.demo.report import DemoOutcome
    from regmix.mixture import Mixture

    def outcome(p_uniform: float, uniform_loss: float) -> DemoOutcome:
        evidence = {"emitted": {"probability_beats": {"prior": 0.95, "uniform": p_uniform}}}
        mixture = Mixture({"a": 0.5, "b": 0.5})
        return DemoOutcome(
            target="t", blend={"a": 1.0}, mixtures={"emitted": Mixture({"a": 0.8, "b": 0.2}), "prior": mixture,
                                                      "uniform": mixture},
            at_target={"emitted": 2.0, "prior": 2.5, "uniform": uniform_loss}, at_proxy={}, noise=0.1,
            rank_spearman=1.0, fit=SimpleNamespace(evidence=evidence, status_line="status: supported"),
            n_proxies=8, wall_s=60.0, out_dir=tmp_path, seed_losses={"emitted": [2.02, 1.98]},
        )

    close = outcome(0.55, 2.04)
    assert list(close.why_not) == ["beats uniform by more than seed noise (means over 2 seeds)"]
    reason = close.why_not["beats uniform by more than seed noise (means over 2 seeds)"]
    assert "it won by +0.0400 nats at target scale, within the seed noise 0.1000" in reason
    assert "P(emitted beats uniform) 55%" in reason and "close race" in reason
    assert f"[ ] emitted beats uniform by more than seed noise (means over 2 seeds): {reason}" in close.summary()

    missed = outcome(0.97, 1.7).why_not["beats uniform by more than seed noise (means over 2 seeds)"]
    assert "it lost by 0.3000 nats at target scale, beyond the seed noise" in missed
    assert "97%" in missed and "a miss" in missed
    expected_loss = outcome(0.2, 2.0).why_not["beats uniform by more than seed noise (means over 2 seeds)"]
    assert "it tied at target scale" in expected_loss and "the fit had forecast a loss: P(emitted beats uniform) 20%" in expected_loss
    assert outcome(0.97, 2.3).why_not == {}  # both won beyond the noise: nothing to explain
