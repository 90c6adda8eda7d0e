"""A killed demo leaves no worker behind: nothing trains or writes a finished record after it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from .helpers import BIN

# Proxies long enough (~1 min each) that a worker left alone would outlive the test's patience.
SLOW_PROXIES = ["n_mixtures=4", "jobs=2", "data.synthetic.train_scale=0.05", "data.synthetic.val_tokens=8192",
                "proxy_train.tokens=4096000", "eval_tokens=4096", "tracker.mode=disabled"]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_sigkill_of_the_demo_stops_its_workers(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([str(BIN / "regmix-demo"), "out_dir=out", *SLOW_PROXIES], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not list(out.glob("proxy/**/.lock")):  # a worker is training
            assert proc.poll() is None, "the demo ended before training"
            time.sleep(0.3)
        assert list(out.glob("proxy/**/.lock")), "no proxy started within 180 s"
        time.sleep(1.0)
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)  # the demo alone: SIGKILL cannot be passed on to workers
        proc.wait(timeout=30)
        deadline = time.time() + 30
        while time.time() < deadline and _group_alive(proc.pid):
            time.sleep(0.3)
        assert not _group_alive(proc.pid), "demo workers still running 30 s after the demo was killed"
        for path in out.glob("proxy/**/result.json"):  # a worker may record `preempted`, never `finished`
            record = json.loads(path.read_text())
            assert record["status"] != "finished" or path.stat().st_mtime < killed_at
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


def test_demo_with_another_sample_seed_refuses_the_old_table(tmp_path, bad_input):
    from regmix.sweep.sample import sample_sweep
    from regmix.corpus.config import DataConfig, SyntheticConfig
    from regmix.corpus.prepare import prepare_corpus

    data = ["data.synthetic.train_scale=0.05", "data.synthetic.val_tokens=8192"]
    prepare_corpus(DataConfig(dir=str(tmp_path / "out" / "data"), synthetic=SyntheticConfig(train_scale=0.05, val_tokens=8192)))
    sample_sweep(data_dir=str(tmp_path / "out" / "data"), sweep="demo", n_mixtures=4, seed=42,
                 out_dir=str(tmp_path / "out" / "sweeps"))
    table = (tmp_path / "out" / "sweeps" / "demo.mixtures.csv").read_bytes()
    done = subprocess.run([str(BIN / "regmix-demo"), "out_dir=out", "n_mixtures=4", "sample_seed=7", *data],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    message = bad_input("regmix-demo sample_seed=7 in an out_dir sampled with seed 42", done)
    assert "sample_seed=42" in message and "sample_seed=7" in message and "out_dir=" in message
    assert (tmp_path / "out" / "sweeps" / "demo.mixtures.csv").read_bytes() == table
    assert not (tmp_path / "out" / "proxy").exists()
