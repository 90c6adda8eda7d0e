"""Faults on the analysis side: a fit killed mid-write, repeated CSV rows, runs of different
setups under one model name, provenance that looks like an interpolation, fits for two targets.

Each asserts what users need: nothing finished is lost or silently replaced, an error is one
line naming the fix, and a rerun completes the work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from analysis.config import FitAppConfig, register_fit_configs
from analysis.emit import emit_mixture
from analysis.errors import AnalysisError
from analysis.fit import run_fit
from tests.support.synthetic_runs import TARGET, linear_loss, synthetic_records
from regmix.hydra_conf import CONF_PACKAGE
from regmix.run_record import write_record

REPO = Path(__file__).resolve().parents[2]
FAST = ["regressor=quick", "simulation.n_candidates=5000", "simulation.top_k=20", "plots=false"]
OTHER = "d_other"
"""A second logged loss, so the same runs can be fitted for two targets."""


def compose_fit(overrides: list[str]) -> FitAppConfig:
    register_fit_configs()
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        return OmegaConf.to_object(compose(config_name="fit", overrides=overrides))


def write_runs(root: Path, n: int = 12, *, config=None) -> Path:
    for rec in synthetic_records(linear_loss(4, seed=3), n, noise=0.01, sweep="syn"):
        rec.val_loss[OTHER] = 5.0 - rec.val_loss[TARGET]
        if config is not None:
            rec.config = config(rec.mixture_index)
        write_record(root / rec.run_name, rec)
    return root


def run_cli(module: str, args: list[str], cwd: Path, *, prelude: str = "", env=None) -> subprocess.CompletedProcess:
    """`python -m <module> args` in `cwd`; `prelude` is Python run first (to inject a fault)."""
    code = f"import sys; sys.argv = ['{module}', *sys.argv[1:]]\n{prelude}\nimport runpy; runpy.run_module('{module}', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------------------- item 6: a killed fit

#: Replaces `emit_mixture` in analysis.fit_emit with one that SIGKILLs the process right before or
#: right after writing the mixture: the two moments between the fit's two outputs.
KILL_AT_EMIT = """
import os, signal, analysis.fit_emit as fit
real = fit.emit_mixture
def emit_then_die(*args, **kwargs):
    if {before}:
        os.kill(os.getpid(), signal.SIGKILL)
    path = real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
fit.emit_mixture = emit_then_die
"""


@pytest.mark.parametrize("before", [False, True], ids=["killed-after-the-mixture", "killed-before-the-mixture"])
def test_a_fit_killed_between_its_outputs_is_complete_or_reruns(tmp_path, before, monkeypatch):
    write_runs(tmp_path / "runs")
    args = ["source.root=runs", f"target={TARGET}", "mixture_dir=mix", "out=killed", *FAST]
    done = run_cli("analysis.cli", args, tmp_path, prelude=KILL_AT_EMIT.format(before=before))
    assert done.returncode == -signal.SIGKILL, done.stderr
    mixture, report = tmp_path / "mix" / "killed.yaml", tmp_path / "reports" / "killed" / "report.md"
    # A mixture on disk is what makes a rerun refuse ("already exists"): it must never be there
    # without its report, or the fit could neither be finished nor rerun.
    assert mixture.exists() == (not before)
    assert report.is_file()
    monkeypatch.chdir(tmp_path)  # the rerun, in this process (a subprocess costs seconds of imports)
    if before:
        result = run_fit(compose_fit(args), progress=False)
        assert result.emitted == Path("mix/killed.yaml") and mixture.is_file()
        assert report.read_text().startswith("# regmix-fit: killed")
    else:  # finished before the kill: the rerun leaves it alone
        with pytest.raises(AnalysisError, match="already exists"):
            run_fit(compose_fit(args), progress=False)


# ---------------------------------------------------------------------------- item 5: CSV duplicates


def write_tables(tmp_path: Path, *, repeat_in: str) -> list[str]:
    recs = synthetic_records(linear_loss(3, seed=1), 8)
    mix = ["index," + ",".join(recs[0].mixture)]
    los = ["index," + TARGET]
    for i, rec in enumerate(recs):
        mix.append(f"{i}," + ",".join(str(w) for w in rec.mixture.values()))
        los.append(f"{i},{rec.val_loss[TARGET]}")
    table = mix if repeat_in == "mixtures" else los
    table.append(table[3].replace(table[3].split(",")[0] + ",", "2,", 1) if repeat_in == "mixtures" else "2,9.5")
    (tmp_path / "m.csv").write_text("\n".join(mix) + "\n")
    (tmp_path / "l.csv").write_text("\n".join(los) + "\n")
    return ["source=csv", "source.mixtures=m.csv", "source.losses=l.csv", f"target={TARGET}", "mixture_dir=mix", *FAST]


def test_a_repeated_index_in_a_csv_table_is_refused_not_dropped(tmp_path, bad_input, monkeypatch):
    args = write_tables(tmp_path, repeat_in="losses")
    done = run_cli("analysis.cli", args, tmp_path)
    line = bad_input("source=csv with a losses table that repeats an index value", done)
    assert "losses table l.csv repeats index value(s) 2 in column 'index'" in line and "source.index" in line
    assert not (tmp_path / "mix").exists() and not (tmp_path / "reports").exists()

    monkeypatch.chdir(tmp_path)
    with pytest.raises(AnalysisError, match=r"mixtures table m.csv repeats index value\(s\) 2"):
        run_fit(compose_fit(write_tables(tmp_path, repeat_in="mixtures")), progress=False)


# ---------------------------------------------------------------------------- item 8: setups


def test_runs_of_one_model_name_but_another_shape_lr_or_eval_slice_are_not_mixed(tmp_path, monkeypatch):
    def config(changed: str):
        def make(i: int) -> dict:
            cfg = {"model": {"name": "tiny", "n_layers": 2, "d_model": 64}, "train": {"lr": 3e-3},
                   "eval": {"tokens_per_domain": 65536}}
            if i % 3 == 0:  # every third run was trained another way under the same model name
                section, key, value = {"shape": ("model", "d_model", 128), "lr": ("train", "lr", 1e-3),
                                       "eval": ("eval", "tokens_per_domain", 4096)}[changed]
                cfg[section][key] = value
            return cfg
        return make

    monkeypatch.chdir(tmp_path)
    shown_for = {"shape": "model.d_model: 64 (8 runs), 128 (4 runs)", "lr": "train.lr: 0.003 (8 runs), 0.001 (4 runs)",
                 "eval": "eval.tokens_per_domain: 65536 (8 runs), 4096 (4 runs)"}
    for changed, shown in shown_for.items():
        root = write_runs(tmp_path / changed, config=config(changed))
        args = [f"source.root={root}", f"target={TARGET}", "mixture_dir=mix", f"out={changed}", *FAST]
        with pytest.raises(AnalysisError, match="the runs mix training setups") as err:
            run_fit(compose_fit(args), progress=False)
        assert shown in str(err.value) and "allow_mixed=true" in str(err.value)
    result = run_fit(compose_fit([*args, "allow_mixed=true"]), progress=False)  # the user's explicit choice
    assert len(result.table) == 12


# ---------------------------------------------------------------------------- item 3: provenance text


@pytest.mark.parametrize("text", ["${oc.env:X}", "a \\${b}", "\\\\${c}", "plain \\ text", "$ {x} ${", "${a:${b}}"])
def test_escaped_text_reads_back_as_itself(text):
    from analysis.emit import escape_interpolation

    loaded = OmegaConf.create({"v": escape_interpolation(text)})
    assert OmegaConf.to_container(loaded, resolve=True)["v"] == text


def test_provenance_is_never_resolved_when_the_target_run_loads_the_mixture(tmp_path):
    secret = "s3cret-value-never-to-be-printed"
    label = "${oc.env:REGMIX_TEST_SECRET}"
    mixture_dir = tmp_path / "conf" / "mixture"
    emit_mixture(
        mixture_dir / "leak.yaml", name="leak", weights={"a": 0.5, "b": 0.5},
        provenance={"runs": {"label": label}, "command": f"regmix-fit source.label='{label}'"}, header=["test"],
    )
    done = run_cli(
        "regmix.cli.train",
        [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "mixture=leak", "dry_run=true", "tracker=disabled",
         f"data.dir={tmp_path / 'no-corpus'}", f"out_dir={tmp_path / 'runs'}"],
        tmp_path, env={"REGMIX_TEST_SECRET": secret},
    )
    assert secret not in done.stdout + done.stderr
    printed = yaml.safe_load(done.stdout)  # dry_run prints the resolved config first
    assert printed["mixture"]["provenance"]["runs"]["label"] == label
    assert printed["mixture"]["provenance"]["command"] == f"regmix-fit source.label='{label}'"


# ---------------------------------------------------------------------------- item 16: two targets


def test_fits_for_two_targets_keep_both_reports_and_the_note_they_point_to(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = write_runs(tmp_path / "runs")
    results = {}
    for target in (TARGET, OTHER):
        cfg = compose_fit([f"source.root={root}", "sweep=syn", f"target={target}", "mixture_dir=mix", *FAST])
        results[target] = run_fit(cfg, progress=False)
    for target, result in results.items():
        report = (tmp_path / "reports" / f"syn_{target}" / "report.md").read_text()
        assert result.report_dir == Path("reports") / f"syn_{target}"
        assert report.startswith(f"# regmix-fit: syn_{target}\n") and f"Target: **{target}**" in report
        # The note the fit's messages point users to ("the report's note on extrapolation").
        assert "## Note on extrapolation" in report and "from the nearest trained run" in report

    # One explicit folder for both: the second fit says that it replaced the first's report.
    shared = [f"source.root={root}", "sweep=syn", "mixture_dir=mix2", "report_dir=shared", *FAST]
    assert not any("held the report" in w for w in run_fit(compose_fit([*shared, f"target={TARGET}"]), progress=False).warnings)
    second = run_fit(compose_fit([*shared, f"target={OTHER}"]), progress=False)
    assert f"shared held the report of mixture 'syn_{TARGET}', replaced by this one's" in " ".join(second.warnings)
    assert "held the report of mixture" in (tmp_path / "shared" / "report.md").read_text()
