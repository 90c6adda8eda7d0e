"""Training under faults: kills, two trainers on one run, a full disk, read-only folders, bad records.

What users need from each: nothing finished is lost or counted twice, nothing outside the
project's folders is touched, an error is one line naming the fix, and a rerun completes the work.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from regmix.run_record import FINISHED

from .helpers import BIN, QUICK, cli, popen, read_only, record, scrubbed, small_corpus, snapshot, weights_arg

MIX = weights_arg(a=0.5, b=0.3, c=0.2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return small_corpus(tmp_path_factory.mktemp("corpus") / "small")


def train_args(corpus: Path, *extra: str) -> list[str]:
    return ["sweep=f", f"data.dir={corpus}", MIX, "run_name=r", *QUICK, *extra]


def test_two_trainers_on_one_run_exactly_one_trains_and_a_rerun_trains_nothing(corpus, tmp_path, bad_input):
    args = train_args(corpus, "train.tokens=102400")  # 200 steps (~5 s): the two overlap even on a busy box
    first, second = (popen("regmix-train", *args, cwd=tmp_path) for _ in range(2))
    outs = [(p.wait(timeout=120), *p.communicate()) for p in (first, second)]
    run_dir = tmp_path / "runs" / "f" / "r"
    trained = [o for o in outs if "steps x" in o[1]]
    refused = [o for o in outs if o[0] != 0]
    assert len(trained) == 1 and len(refused) == 1, outs
    assert trained[0][0] == 0 and "finished in" in trained[0][1]
    message = bad_input("a second regmix-train on a run folder another process is training",
                        scrubbed(subprocess.CompletedProcess([], *refused[0]), tmp_path))
    assert "being trained by pid <pid>" in message and "wait for it to end" in message
    done = record(run_dir)
    assert done["status"] == FINISHED
    stamp = (run_dir / "result.json").stat().st_mtime_ns
    again = cli("regmix-train", *args, cwd=tmp_path)
    assert again.returncode == 0 and "already finished, nothing to train" in again.stdout, again.stderr
    assert (run_dir / "result.json").stat().st_mtime_ns == stamp and record(run_dir) == done


def _wait_for_line(proc: subprocess.Popen, text: str) -> None:
    for line in proc.stdout:
        if text in line:
            return


def test_sigkill_at_random_points_of_training_never_leaves_a_false_record(corpus, tmp_path):
    """Kill runs at seeded random moments (one in start-up, the others after training began:
    in the steps, the evaluation or the record write), each in its own run folder; after each
    kill the record is absent, unfinished or complete, and one rerun of them all finishes the
    work exactly once (runs that had finished are not trained again)."""
    rng = random.Random(11)
    unbuffered = {**os.environ, "PYTHONUNBUFFERED": "1"}  # see "steps x" when it is printed
    names = [f"r{i}" for i in range(5)]
    before = {}
    for attempt, name in enumerate(names):
        args = [a if a != "run_name=r" else f"run_name={name}" for a in train_args(corpus)]
        proc = popen("regmix-train", *args, cwd=tmp_path, env=unbuffered)
        if attempt == 0:
            time.sleep(rng.uniform(0.2, 2.0))
        else:
            _wait_for_line(proc, "steps x")
            time.sleep(rng.uniform(0.0, 2.0))  # the tiny run trains ~1.5 s, then evaluates and writes
        proc.kill()
        proc.communicate(timeout=60)
        found = record(tmp_path / "runs" / "f" / name)  # json.loads: a torn record would fail here
        assert found is None or found["status"] in ("finished", "failed", "preempted")
        if found and found["status"] == FINISHED:
            assert set(found["val_loss"]) == {"a", "b", "c"}
            before[name] = (tmp_path / "runs" / "f" / name / "result.json").stat().st_mtime_ns
    args = [a for a in train_args(corpus) if a != "run_name=r"]
    done = cli("regmix-train", "-m", *args, "run_name=" + ",".join(names), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in names:
        assert record(tmp_path / "runs" / "f" / name)["status"] == FINISHED
    assert {n: (tmp_path / "runs" / "f" / n / "result.json").stat().st_mtime_ns for n in before} == before
    assert done.stdout.count("already finished, nothing to train") == len(before)
    assert len(before) < len(names)  # at least one kill landed before the record was written


_WRITER = """
import sys
from regmix.run_record import RunRecord, write_record
big = "x" * 200_000  # a record of ~200 kB: the write takes long enough to be hit
i = 0
while True:
    write_record(sys.argv[1], RunRecord(status="finished", extra={"n": i, "pad": big}))
    i += 1
"""


def test_sigkill_during_record_writes_never_leaves_half_a_record(tmp_path):
    rng = random.Random(7)
    run_dir = tmp_path / "run"
    seen = set()
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(run_dir)])
        time.sleep(rng.uniform(0.3, 0.8))
        proc.kill()
        proc.wait(timeout=30)
        if (run_dir / "result.json").exists():
            found = json.loads((run_dir / "result.json").read_text())  # never a torn file
            assert found["status"] == FINISHED and len(found["pad"]) == 200_000
            seen.add(found["n"])
    assert seen  # the writer got going at least once, so the kills did land inside writes


def _limit_file_size(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_full_disk_during_the_record_write_is_one_line_and_a_rerun_completes(corpus, tmp_path, bad_input):
    # A file-size limit stands in for a full disk. Hydra's copy of the config (4 kB) would hit it
    # first, so it is turned off here; the log is empty and the record (~2.7 kB) does not fit.
    done = cli("regmix-train", *train_args(corpus), "hydra.output_subdir=null", cwd=tmp_path,
               preexec_fn=_limit_file_size(2000))
    message = bad_input("disk full (file-size limit) while regmix-train writes its record", done)
    assert "result.json" in message and "free disk space" in message
    run_dir = tmp_path / "runs" / "f" / "r"
    assert record(run_dir) is None and not list(run_dir.glob(".result.json.*"))
    again = cli("regmix-train", *train_args(corpus), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert record(run_dir)["status"] == FINISHED


def test_read_only_runs_folder_is_one_line(corpus, tmp_path, bad_input):
    runs = tmp_path / "runs"
    runs.mkdir()
    with read_only(runs):
        done = cli("regmix-train", *train_args(corpus), cwd=tmp_path)
        message = bad_input("regmix-train with a read-only runs/ folder", scrubbed(done, tmp_path))
        assert "runs" in message and "not writable" in message and "out_dir=" in message
        assert list(runs.iterdir()) == []


def test_dry_run_creates_no_run_folder(corpus, tmp_path):
    done = cli("regmix-train", *train_args(corpus), "dry_run=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "would train" in done.stdout
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("content, what", [
    (b"{\"status\": \"fini", "a truncated result.json"),
    (b"\xff\xfe{\"status\": \"finished\"}", "a non-UTF-8 result.json"),
])
def test_corrupt_record_is_named_and_never_silently_replaced(corpus, tmp_path, bad_input, content, what):
    run_dir = tmp_path / "runs" / "f" / "r"
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_bytes(content)
    done = cli("regmix-train", *train_args(corpus), cwd=tmp_path)
    message = bad_input(f"regmix-train on a run folder with {what}", done)
    assert "runs/f/r/result.json" in message and "move it away" in message
    assert (run_dir / "result.json").read_bytes() == content  # kept for the user to inspect


def test_edited_finished_record_with_other_settings_is_refused(corpus, tmp_path, bad_input):
    first = cli("regmix-train", *train_args(corpus), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "runs" / "f" / "r"
    edited = record(run_dir)
    edited["mixture"] = {"a": 1.0}
    (run_dir / "result.json").write_text(json.dumps(edited))
    before = snapshot(run_dir)["result.json"]
    done = cli("regmix-train", *train_args(corpus), cwd=tmp_path)
    message = bad_input("regmix-train on a finished record edited to other settings", done)
    assert "never overwritten" in message
    assert snapshot(run_dir)["result.json"] == before


def test_train_names_every_domain_the_eval_slice_does_not_fit(tmp_path, bad_input):
    corpus = small_corpus(tmp_path / "short", val_tokens={"a": 1_000, "b": 9_000, "c": 1_500})
    done = cli("regmix-train", *train_args(corpus, "eval.tokens_per_domain=4096"), cwd=tmp_path)
    message = bad_input("eval.tokens_per_domain larger than several domains' validation splits", scrubbed(done, tmp_path))
    assert "a (1,000)" in message and "c (1,500)" in message and "b (" not in message
    assert "eval.tokens_per_domain=999" in message
    assert not (tmp_path / "runs" / "f" / "r" / "result.json").exists()


def test_help_piped_into_head_ends_quietly(tmp_path):
    for name in ("regmix-train", "regmix-prepare", "regmix-sample"):  # one decorator; three to show it
        done = subprocess.run(f"{BIN / name} --help | head -1", shell=True, cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
        assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, (name, done.stderr)
        assert done.stdout.strip(), name


def test_analysis_drops_a_non_utf8_record_naming_its_run(corpus, tmp_path):
    from analysis.sources.local import load_local_runs

    done = cli("regmix-train", *train_args(corpus), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    bad = tmp_path / "runs" / "f" / "broken"
    bad.mkdir()
    (bad / "result.json").write_bytes(b"\xff\xfe{\"status\": \"finished\"}")
    raw = load_local_runs(str(tmp_path / "runs" / "f"))
    assert list(raw.runs.index) == ["r"]  # the good run is kept, finished work is not lost
    assert [(run_id, why) for run_id, why, _ in raw.dropped] == [("broken", "unreadable result.json")]
