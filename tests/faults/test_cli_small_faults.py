"""Smaller faults of the commands (issue 18, LOW): each one line that names the fix, or a
warning where work would be lost quietly."""

from __future__ import annotations

import errno
import os
import shutil

from omegaconf import OmegaConf

from regmix.cli.hydra_app import user_errors_exit
from tests.faults.helpers import QUICK, cli, small_corpus


def test_a_cache_path_that_is_a_file_is_one_line(tmp_path, bad_input):
    (tmp_path / "cache").write_text("not a folder\n")
    env = {k: v for k, v in os.environ.items() if k != "REGMIX_PAPER_DATA"}
    env.update(REGMIX_CACHE=str(tmp_path / "cache"), REGMIX_PAPER_URL="http://127.0.0.1:9")  # never reached
    done = cli("regmix-fit", "source=paper", "report_dir=rep", "mixture_dir=mix", cwd=tmp_path, env=env)
    line = bad_input("REGMIX_CACHE naming a file for regmix-fit source=paper",
                     done.__class__(done.args, done.returncode, done.stdout,
                                    done.stderr.replace(str(tmp_path), "<tmp>")))
    assert done.returncode == 2
    assert "is a file, not a folder" in line and "REGMIX_CACHE" in line
    assert "127.0.0.1" not in line  # refused before any download
    assert not (tmp_path / "rep").exists() and not (tmp_path / "mix").exists()


def test_overwriting_a_sweep_with_finished_runs_names_them(tmp_path):
    small_corpus(tmp_path / "corpus")
    assert cli("regmix-sample", "sweep=s", "n_mixtures=4", "data.dir=corpus", cwd=tmp_path).returncode == 0
    for index in range(2):
        done = cli("regmix-train", "sweep=s", f"mixture.index={index}", "data.dir=corpus", *QUICK, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    quiet = cli("regmix-sample", "sweep=other", "n_mixtures=4", "data.dir=corpus", cwd=tmp_path)
    assert "warning: overwrote" not in quiet.stdout  # a new sweep: nothing to warn about

    done = cli("regmix-sample", "sweep=s", "n_mixtures=4", "seed=7", "data.dir=corpus", "overwrite=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning: overwrote")]
    assert len(warnings) == 1, done.stdout
    assert "2 finished run(s) of the old table (mix0000, mix0001)" in warnings[0]
    assert "runs/s" in warnings[0]

    shutil.rmtree(tmp_path / "runs" / "s")
    again = cli("regmix-sample", "sweep=s", "n_mixtures=4", "seed=8", "data.dir=corpus", "overwrite=true", cwd=tmp_path)
    assert "warning: overwrote" not in again.stdout


def _refused_write(cfg: dict, filename: str, folders: tuple[str, ...], capsys) -> str:
    def command(_cfg):
        raise PermissionError(errno.EACCES, "Permission denied", filename)

    try:
        user_errors_exit(command, folders)(OmegaConf.create(cfg))
    except SystemExit as stop:
        assert stop.code == 2
    return capsys.readouterr().err.strip()


def test_an_unwritable_report_folder_names_the_fits_own_settings(capsys):
    """regmix-fit writes reports and mixtures: its hint names report_dir / mixture_dir, not the
    out_dir= / data.dir= of the training side."""
    fit = ("report_dir", "mixture_dir")
    line = _refused_write({"report_dir": "ro/rep", "mixture_dir": None}, "ro/rep/report.md", fit, capsys)
    assert line.endswith("choose another folder (report_dir=...)"), line
    line = _refused_write({"report_dir": None, "mixture_dir": None}, "reports/x/report.md", fit, capsys)
    assert line.endswith("choose another folder (report_dir=..., mixture_dir=...)"), line
    assert "out_dir" not in line and "data.dir" not in line
    line = _refused_write({"data": {"dir": "corpus"}}, "corpus/a/train.bin", ("data.dir",), capsys)
    assert line.endswith("choose another folder (data.dir=...)"), line


def test_a_fit_on_equal_losses_prints_no_library_warnings(tmp_path):
    """All losses equal: nothing to rank. The fit says so in its own words (a fallback, no better
    mixture), without scipy's ConstantInputWarning from the per-domain correlations."""
    import numpy as np
    import pandas as pd

    weights = np.random.default_rng(0).dirichlet([1, 1, 1], 24)
    pd.DataFrame({"index": range(24), "a": weights[:, 0], "b": weights[:, 1], "c": weights[:, 2]}).to_csv(
        tmp_path / "m.csv", index=False)
    pd.DataFrame({"index": range(24), "a": 3.0, "b": 3.0, "c": 3.0}).to_csv(tmp_path / "l.csv", index=False)
    done = cli("regmix-fit", "source=csv", "source.mixtures=m.csv", "source.losses=l.csv", "target=a",
               "simulation.n_candidates=2000", "regressor=quick", "report_dir=rep", "mixture_dir=mix", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "warnings.warn" not in done.stderr, done.stderr
