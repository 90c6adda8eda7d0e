"""The RegMix paper's released proxy runs (sail-sg/regmix `data/`), fetched once and cached.

`locate(names)` returns a folder holding the named files, checked against the sha256 digests
recorded here, in this order:

1. `$REGMIX_PAPER_DATA`: a local copy (offline machines); never written to;
2. the cache, `$REGMIX_CACHE/regmix-paper` (default `~/.cache/regmix/regmix-paper`): files
   already fetched and verified;
3. a download of each missing file from `$REGMIX_PAPER_URL` (default GitHub's raw files of
   sail-sg/regmix), pinned to a commit per file. A download is written to a temporary file,
   verified, then renamed into the cache: a corrupted or truncated file is never cached.

Failures are one `PaperDataError` line naming both ways out (the local copy, the cache).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from analysis.errors import AnalysisError

#: Name of the dataset (`source.dataset`) and of its folder in the cache.
DATASET = "regmix-paper"
LOCAL_COPY_ENV = "REGMIX_PAPER_DATA"
CACHE_ENV = "REGMIX_CACHE"
BASE_URL_ENV = "REGMIX_PAPER_URL"
DEFAULT_BASE_URL = "https://raw.githubusercontent.com/sail-sg/regmix"
#: Seconds to wait for the server per request (the files are 25-125 kB).
TIMEOUT_S = 60


@dataclass(frozen=True)
class ReleasedFile:
    commit: str
    """The sail-sg/regmix commit the file is fetched at (raw URL: <base>/<commit>/data/<name>)."""
    sha256: str
    """Digest of the released file; anything else is refused."""


#: The released CSVs of the 1M-parameter proxies: 512 training and 256 test mixtures.
#: All four were last changed in b1bc0b4 ("finalize the code release", 2024-07-03); the digests are
#: of the files at that commit.
FILES: dict[str, ReleasedFile] = {
    "train_mixture_1m.csv": ReleasedFile(
        "b1bc0b41040667ab813d6d9b2dd0b37186b198cc", "04a32ef4ab594376bf90e11404c033668f887c351d6a03ad3744824c7296a2d8"
    ),
    "train_pile_loss_1m.csv": ReleasedFile(
        "b1bc0b41040667ab813d6d9b2dd0b37186b198cc", "49a959aa07ce5c20831d5abe3a7896ff0cd90a398bd407c8913fd5588be0465a"
    ),
    "test_mixture_1m.csv": ReleasedFile(
        "b1bc0b41040667ab813d6d9b2dd0b37186b198cc", "197267b7d6f15367e2f46c881e564c35b0d34e51b1754bb09d07e650cf8e1ce8"
    ),
    "test_pile_loss_1m.csv": ReleasedFile(
        "b1bc0b41040667ab813d6d9b2dd0b37186b198cc", "e027b1674f60140a65a87b5e4a59ab5f09dc33e8fd02c080682678074b160f53"
    ),
}


class PaperDataError(AnalysisError):
    """The paper's data can be neither found nor fetched; the message names the ways out."""


def cache_dir() -> Path:
    """`$REGMIX_CACHE/regmix-paper`, default `~/.cache/regmix/regmix-paper`."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "regmix")
    return Path(root) / DATASET


def file_url(name: str) -> str:
    base = (os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    return f"{base}/{FILES[name].commit}/data/{name}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ways_out() -> str:
    return (
        f"set {LOCAL_COPY_ENV}=<folder holding {', '.join(FILES)}> (a local copy), "
        f"or {CACHE_ENV}=<folder> whose {DATASET}/ holds them"
    )


def _check_names(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in FILES]
    if unknown:
        raise PaperDataError(f"{unknown[0]!r} is not a released file of {DATASET}; use one of {sorted(FILES)}")


def _from_local_copy(folder: Path, names: Sequence[str]) -> Path:
    for name in names:
        path = folder / name
        if not path.is_file():
            raise PaperDataError(f"{LOCAL_COPY_ENV}={folder} has no {name}; point it at the folder of the released CSVs")
        if _sha256(path) != FILES[name].sha256:
            raise PaperDataError(
                f"{path} is not the released file (sha256 {_sha256(path)[:12]}..., expected "
                f"{FILES[name].sha256[:12]}...); replace it or unset {LOCAL_COPY_ENV} to download it"
            )
    return folder


def _download(name: str, folder: Path) -> None:
    url = file_url(name)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise PaperDataError(f"could not download {url} ({reason}); {_ways_out()}") from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != FILES[name].sha256:
        raise PaperDataError(
            f"download of {url} has sha256 {digest[:12]}..., not the released {FILES[name].sha256[:12]}...; "
            f"nothing was cached; retry, or {_ways_out()}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, folder / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_cache_folder(folder: Path) -> None:
    """Refuse, before any download, a cache whose path runs through a file (REGMIX_CACHE set to
    a file, or a file where a folder of it should be): mkdir would fail only after the fetch."""
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise PaperDataError(
                    f"the cache folder {folder} cannot be made: {part} is a file, not a folder; "
                    f"point {CACHE_ENV} at a folder (or move that file away), or {_ways_out()}"
                )
            return


def locate(names: Sequence[str] = tuple(FILES), *, log=None) -> Path:
    """A folder holding the released files `names`, verified; fetched into the cache if needed."""
    names = list(names)
    _check_names(names)
    local = os.environ.get(LOCAL_COPY_ENV)
    if local:
        return _from_local_copy(Path(local), names)
    folder = cache_dir()
    _check_cache_folder(folder)
    for name in names:
        path = folder / name
        if path.is_file() and _sha256(path) == FILES[name].sha256:
            continue
        if log is not None:
            log(f"fetching {file_url(name)} into {folder}")
        _download(name, folder)
    return folder
