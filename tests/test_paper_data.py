"""`source=paper`: the released CSVs fetched from a (loopback) server, verified, cached; a
corrupted download refused with one line and never cached. Nothing here reaches the internet."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from analysis import paper_data
from analysis.paper_data import FILES, PaperDataError, ReleasedFile, locate

SHARED = Path(__file__).resolve().parents[1] / "../shared/data/regmix-paper"
BIN = Path(sys.executable).parent
RECORDED = dict(FILES)  # the pins as recorded (fixtures below swap in their own)


class _Server:
    """A loopback HTTP server over `root`, laid out like raw.githubusercontent.com
    (`<commit>/data/<file>`), counting the requests it answers."""

    def __init__(self, root: Path):
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _publish(root: Path, files: dict[str, bytes], pins: dict[str, ReleasedFile]) -> None:
    for name, payload in files.items():
        path = root / pins[name].commit / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)


@pytest.fixture()
def released(tmp_path, monkeypatch):
    """Two small 'released' files with their digests pinned in place of the real ones."""
    files = {"train_mixture_1m.csv": b"index,train_the_pile_a\n0,1.0\n", "train_pile_loss_1m.csv": b"index,x\n0,2.0\n"}
    pins = {name: ReleasedFile("c0ffee" * 6 + "c0ff", hashlib.sha256(data).hexdigest()) for name, data in files.items()}
    monkeypatch.setattr(paper_data, "FILES", pins)
    monkeypatch.delenv("REGMIX_PAPER_DATA", raising=False)
    monkeypatch.setenv("REGMIX_CACHE", str(tmp_path / "cache"))
    return files, pins


def test_fetch_verifies_and_caches_then_reads_the_cache(tmp_path, monkeypatch, released):
    files, pins = released
    _publish(tmp_path / "www", files, pins)
    with _Server(tmp_path / "www") as server:
        monkeypatch.setenv("REGMIX_PAPER_URL", server.url)
        folder = locate(list(files))
        assert folder == tmp_path / "cache" / "regmix-paper"
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
        assert len(server.requests) == 2
        assert locate(list(files)) == folder and len(server.requests) == 2  # cached: no new request


def test_corrupted_download_is_refused_and_not_cached(tmp_path, monkeypatch, released):
    files, pins = released
    _publish(tmp_path / "www", {**files, "train_pile_loss_1m.csv": b"index,x\n0,9.9\n"}, pins)
    with _Server(tmp_path / "www") as server:
        monkeypatch.setenv("REGMIX_PAPER_URL", server.url)
        with pytest.raises(PaperDataError) as err:
            locate(list(files))
    message = str(err.value)
    assert "\n" not in message and "sha256" in message and "nothing was cached" in message
    cached = sorted(p.name for p in (tmp_path / "cache" / "regmix-paper").iterdir())
    assert cached == ["train_mixture_1m.csv"]  # the good file stays, the bad one (and no .part) is absent


def test_no_server_names_the_local_copy_and_the_cache(tmp_path, monkeypatch, released):
    files, _ = released
    monkeypatch.setenv("REGMIX_PAPER_URL", "http://127.0.0.1:9")  # discard port: refused at once
    with pytest.raises(PaperDataError, match=r"could not download .*REGMIX_PAPER_DATA=.*REGMIX_CACHE="):
        locate(list(files))
    assert not (tmp_path / "cache" / "regmix-paper").exists()


def test_a_local_copy_is_used_as_is_and_checked(tmp_path, monkeypatch, released):
    files, _ = released
    copy = tmp_path / "copy"
    copy.mkdir()
    for name, payload in files.items():
        (copy / name).write_bytes(payload)
    monkeypatch.setenv("REGMIX_PAPER_DATA", str(copy))
    monkeypatch.setenv("REGMIX_PAPER_URL", "http://127.0.0.1:9")
    assert locate(list(files)) == copy
    (copy / "train_pile_loss_1m.csv").write_bytes(b"changed")
    with pytest.raises(PaperDataError, match="is not the released file"):
        locate(list(files))


def test_cli_refuses_a_corrupted_download_with_one_line(tmp_path, released):
    """regmix-fit source=paper against a loopback server whose files do not match the digests."""
    www = tmp_path / "www"
    for name, pin in RECORDED.items():  # the subprocess checks the recorded pins, not the fixture's
        path = www / pin.commit / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not the released file\n")
    with _Server(www) as server:
        env = {k: v for k, v in os.environ.items() if k != "REGMIX_PAPER_DATA"}
        env.update(REGMIX_PAPER_URL=server.url, REGMIX_CACHE=str(tmp_path / "cache"))
        done = subprocess.run([str(BIN / "regmix-fit"), "source=paper", "report_dir=rep", "mixture_dir=mix"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: download of ") and "nothing was cached" in lines[-1]
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "cache").rglob("*.csv"))
    assert not (tmp_path / "mix").exists()


@pytest.mark.skipif(not SHARED.is_dir(), reason="the released CSVs (../shared/data/regmix-paper) are absent, "
                    "so the recorded digests cannot be checked against them")
def test_recorded_pins_match_the_released_files(tmp_path, monkeypatch):
    """Served from the loopback at their pinned commits, the released files pass the recorded digests."""
    pins = RECORDED
    _publish(tmp_path / "www", {name: (SHARED / name).read_bytes() for name in pins}, pins)
    monkeypatch.delenv("REGMIX_PAPER_DATA", raising=False)
    monkeypatch.setenv("REGMIX_CACHE", str(tmp_path / "cache"))
    with _Server(tmp_path / "www") as server:
        monkeypatch.setenv("REGMIX_PAPER_URL", server.url)
        folder = locate(list(pins))
    assert sorted(p.name for p in folder.iterdir()) == sorted(pins)
