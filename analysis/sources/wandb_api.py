"""Run source: the finished runs of a W&B sweep, group or tag, pulled through the public API.

Cost: one GraphQL request per page of `per_page` finished runs, plus two at the start (the
login check and the default entity). Config and summary come inside each page
(`lazy=False`), so there is no request per run; crashed, failed, killed and running runs are
filtered out by the server (`{"state": "finished"}`) and never travel.

Each run becomes the run record the project owns (`regmix.run_record.RunRecord`):
weights from the run's own nested config `mixture.weights` (never from the flat sweep key
`mixture.index` that `wandb agent` merges in), losses from summary keys `val/<domain>/loss`.
A run without weights or losses is skipped and reported with its reason.

Retries, two layers: every request is retried by wandb-core (`retries` times, waits growing
from `retry_wait_s` to `retry_wait_max_s` seconds, each request timing out after
`timeout_s`); if a request still fails, the whole pull starts again, up to `pull_attempts`
times, and then stops with one error line naming the path and the fix.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, List, Optional

from analysis.errors import AnalysisError
from regmix.mixture import Mixture, MixtureError
from regmix.metrics import TOKENS_KEY, parse_val_loss_key
from regmix.run_record import FINISHED, RunRecord

#: `val/<name>/loss` summary keys that are aggregates the training app logs, not domains.


class WandbSourceError(AnalysisError):
    """The W&B pull cannot go on; the message names the project path and the fix.

    An `AnalysisError` (a `ValueError`): `regmix-fit` prints it as one `error: ...` line."""


@dataclass
class WandbSourceConfig:
    """Where to pull proxy runs from on W&B, and how patiently."""

    entity: Optional[str] = None
    """W&B entity (user or team); None = the API key's default entity."""
    project: str = "regmix"
    sweep: Optional[str] = None
    """Sweep id (the 8-character id `wandb sweep` printed), or the path `wandb agent` takes
    (`<entity>/<project>/<id>`, `<project>/<id>`) or the sweep's URL: its entity and project
    then come from the path."""
    group: Any = None
    """W&B group, or a list of groups (the rounds of an active search: regmix-train logs each
    sweep's runs in group `<sweep>`); typed Any so the command line can give a list."""
    tags: List[str] = field(default_factory=list)
    """Runs carrying any of these tags."""
    per_page: int = 1000
    """Runs per GraphQL page: the pull costs ceil(runs / per_page) requests."""
    timeout_s: int = 60
    """Seconds one request may take (a page of 1000 runs with full configs is a few MB)."""
    retries: int = 5
    """Retries of one failed request by the wandb client (HTTP 429/5xx, timeouts); at least 1,
    because wandb-core reads 0 as "unset" and then retries 20 times."""
    retry_wait_s: int = 2
    """First wait between retries of a request, in whole seconds (wandb-core ignores fractions)."""
    retry_wait_max_s: int = 60
    """Longest wait between retries of a request (seconds)."""
    pull_attempts: int = 2
    """Times the whole pull is tried before giving up with an error."""
    base_url: Optional[str] = None
    """W&B server URL; None = WANDB_BASE_URL or the W&B cloud. The API key is never a config
    value: it comes from WANDB_API_KEY or `wandb login`."""
    progress: bool = True
    """Show a progress bar (stderr) while pages arrive."""


@dataclass
class WandbPull:
    """What a pull brought back: run records, and the runs left out with their reason."""

    path: str
    """entity/project pulled from."""
    filters: dict[str, Any]
    records: list[RunRecord]
    skipped: dict[str, list[str]]
    """reason -> ids of the runs skipped for it."""

    def summary_line(self) -> str:
        """One line for the user: what was pulled, what was skipped and why."""
        selector = ", ".join(_describe_filters(self.filters))
        line = f"W&B {self.path} ({selector}): {len(self.records)} finished runs"
        if self.skipped:
            n_skipped = sum(len(ids) for ids in self.skipped.values())
            reasons = "; ".join(
                f"{len(ids)} {reason} (e.g. {', '.join(ids[:3])})" for reason, ids in sorted(self.skipped.items())
            )
            line += f", {n_skipped} skipped: {reasons}"
        return line


def run_filters(cfg: WandbSourceConfig) -> dict[str, Any]:
    """The server-side filter: finished runs of the configured sweep / group / tags."""
    clauses: list[dict[str, Any]] = [{"state": "finished"}]
    if cfg.sweep:
        clauses.append({"sweep": cfg.sweep})
    if cfg.group:
        groups = [cfg.group] if isinstance(cfg.group, str) else list(cfg.group)
        clauses.append({"group": groups[0]} if len(groups) == 1 else {"group": {"$in": groups}})
    if cfg.tags:
        clauses.append({"tags": {"$in": list(cfg.tags)}})
    return {"$and": clauses}


def resolve_sweep_path(cfg: WandbSourceConfig) -> WandbSourceConfig:
    """`cfg` with `sweep` as a bare id: a path (`<entity>/<project>/<id>`, `<project>/<id>`, the
    form `wandb agent` takes) or a sweep URL (`https://<host>/<entity>/<project>/sweeps/<id>`)
    is split, its entity and project taking the place of `entity` / `project`.

    An explicit `entity` that disagrees with the path's is refused: one of them is a typo.
    """
    sweep = (cfg.sweep or "").strip()
    if "/" not in sweep:
        return cfg
    text = sweep.split("?", 1)[0].split("#", 1)[0]
    if "://" in text:
        text = text.split("://", 1)[1].split("/", 1)[1] if "/" in text.split("://", 1)[1] else ""
    parts = [p for p in text.split("/") if p]
    if len(parts) >= 2 and parts[-2] == "sweeps":  # the UI's URL: .../<entity>/<project>/sweeps/<id>
        parts = parts[:-2] + parts[-1:]
    if not 2 <= len(parts) <= 3:
        raise WandbSourceError(
            f"source.wandb.sweep={cfg.sweep!r} is not a sweep id; use <id>, <project>/<id> or "
            "<entity>/<project>/<id> (what `wandb agent` takes)"
        )
    entity = parts[0] if len(parts) == 3 else cfg.entity
    project, sweep_id = parts[-2], parts[-1]
    if cfg.entity and entity != cfg.entity:
        raise WandbSourceError(
            f"source.wandb.sweep={cfg.sweep!r} names entity {entity!r} but source.wandb.entity={cfg.entity!r}; "
            "drop one of them"
        )
    return replace(cfg, entity=entity, project=project, sweep=sweep_id)


def check_config(cfg: WandbSourceConfig) -> None:
    """Raise `WandbSourceError` for settings that cannot work."""
    if not (cfg.sweep or cfg.group or cfg.tags):
        raise WandbSourceError(
            "source=wandb needs a selector: set source.wandb.sweep=<sweep id>, source.wandb.group=<group> or "
            "'source.wandb.tags=[<tag>]' (a whole project mixes sweeps, models and corpora)"
        )
    if not cfg.project:
        raise WandbSourceError("source.wandb.project is empty; set source.wandb.project=<project>")
    for name, value, minimum in (
        ("per_page", cfg.per_page, 1),
        ("timeout_s", cfg.timeout_s, 1),
        ("retries", cfg.retries, 1),
        ("retry_wait_s", cfg.retry_wait_s, 1),
        ("retry_wait_max_s", cfg.retry_wait_max_s, cfg.retry_wait_s),
        ("pull_attempts", cfg.pull_attempts, 1),
    ):
        if value < minimum:
            raise WandbSourceError(f"source.wandb.{name}={value} is too small; use a value >= {minimum}")


def load_wandb_runs(cfg: WandbSourceConfig, *, log: Optional[Callable[[str], None]] = None) -> list[RunRecord]:
    """Finished runs as `RunRecord`s.

    Skipped runs (no mixture weights, no losses) are reported through `log` (default: one
    line on stderr). Raises `WandbSourceError` when the pull fails after its retries.
    """
    pull = pull_wandb_runs(cfg, log=log)
    (log or _stderr)(pull.summary_line())
    return pull.records


def pull_wandb_runs(cfg: WandbSourceConfig, *, log: Optional[Callable[[str], None]] = None) -> WandbPull:
    """Pull the configured runs; the records plus what was skipped and why."""
    cfg = resolve_sweep_path(cfg)
    check_config(cfg)
    log = log or _stderr
    filters = run_filters(cfg)
    path = f"{cfg.entity}/{cfg.project}" if cfg.entity else cfg.project
    for attempt in range(1, cfg.pull_attempts + 1):
        try:
            return _pull_once(cfg, filters)
        except WandbSourceError:
            raise
        except Exception as err:  # wandb raises several unrelated types for a failed request
            if not _is_transient(err):
                raise _permanent_error(err, path) from err
            message = _transient_reason(err)
            if attempt == cfg.pull_attempts:
                raise WandbSourceError(
                    f"could not pull runs from W&B {path} after {attempt} attempt(s): {message}. "
                    "Check the network and WANDB_BASE_URL, or raise source.wandb.timeout_s / source.wandb.retries / "
                    "source.wandb.pull_attempts"
                ) from err
            log(f"W&B pull from {path} failed ({message}); starting it again ({attempt + 1}/{cfg.pull_attempts})")
            time.sleep(cfg.retry_wait_s)
    raise AssertionError("unreachable")  # the loop returns or raises


def _pull_once(cfg: WandbSourceConfig, filters: dict[str, Any]) -> WandbPull:
    with _scratch_run_dirs():
        return _pull_pages(cfg, filters)


@contextmanager
def _scratch_run_dirs() -> Iterator[None]:
    """Point the public API's per-run folders at a temp dir removed afterwards.

    Every `wandb.apis.public.Run` makes an (empty) folder `$WANDB_DIR/<entity>/<project>/<id>`,
    WANDB_DIR defaulting to the system temp dir: 300 runs pulled left 300 folders behind.
    Nothing is downloaded into them here, so they go with the scratch dir.
    """
    saved = os.environ.get("WANDB_DIR")
    with tempfile.TemporaryDirectory(prefix="regmix-wandb-pull-") as scratch:
        os.environ["WANDB_DIR"] = scratch
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("WANDB_DIR", None)
            else:
                os.environ["WANDB_DIR"] = saved


def _pull_pages(cfg: WandbSourceConfig, filters: dict[str, Any]) -> WandbPull:
    import wandb
    from tqdm import tqdm

    with _client_retry_settings(cfg):
        overrides = {"base_url": cfg.base_url} if cfg.base_url else None
        api = wandb.Api(overrides=overrides, timeout=cfg.timeout_s)
    path = f"{cfg.entity}/{cfg.project}" if cfg.entity else cfg.project
    # lazy=False: config and summary ride in each page; lazy runs cost one request per run.
    runs = api.runs(path, filters=filters, per_page=cfg.per_page, lazy=False)
    total = len(runs)  # loads the first page (its runCount); iteration reuses it
    records: list[RunRecord] = []
    skipped: dict[str, list[str]] = {}
    seen: set[str] = set()
    # A bar only when more than one page comes: a single request has nothing to show.
    show = cfg.progress and total > cfg.per_page
    with tqdm(total=total, unit="run", desc="W&B runs", disable=not show, leave=False, file=sys.stderr) as bar:
        for run in runs:
            bar.update(1)
            if run.id in seen:  # a run created during the pull can shift pages; keep the first
                continue
            seen.add(run.id)
            record, reason = record_from_run(
                run_id=run.id,
                display_name=run.name,
                state=run.state,
                config=run.config,
                summary=run.summary_metrics,
                sweep_id=run.sweep_name,
                entity=run.entity,
                project=run.project,
                url=run.url,
                created_at=run.created_at,
            )
            if record is None:
                skipped.setdefault(reason, []).append(run.id)
            else:
                records.append(record)
    return WandbPull(path=f"{runs.entity}/{runs.project}", filters=filters, records=records, skipped=skipped)


def record_from_run(
    *,
    run_id: str,
    display_name: Optional[str],
    state: str,
    config: Mapping[str, Any],
    summary: Mapping[str, Any],
    sweep_id: Optional[str],
    entity: str,
    project: str,
    url: Optional[str],
    created_at: Optional[str] = None,
) -> tuple[Optional[RunRecord], str]:
    """The `RunRecord` of one W&B run, or (None, reason it cannot be used)."""
    if state != FINISHED:
        return None, f"state {state!r} (not finished)"
    mixture_cfg = config.get("mixture")
    weights = mixture_cfg.get("weights") if isinstance(mixture_cfg, Mapping) else None
    if not isinstance(weights, Mapping) or not weights:
        return None, "no mixture.weights in the run config"
    try:
        mixture = Mixture({str(k): v for k, v in weights.items()})
    except (MixtureError, TypeError, ValueError) as err:
        return None, f"invalid mixture.weights ({_first_line(err)})"
    val_loss: dict[str, float] = {}
    for key, value in summary.items():
        domain = parse_val_loss_key(key)
        if domain is not None:
            loss = _as_float(value)
            if loss is None or not math.isfinite(loss):
                return None, f"non-finite or non-numeric {key} in the summary"
            val_loss[domain] = loss
    if not val_loss:
        return None, "no val/<domain>/loss in the run summary"
    # Every other number in the summary is a metric a fit may target (W&B's own keys, '_...', aside).
    metrics = {str(k): v for k, v in summary.items()
               if not str(k).startswith("_") and parse_val_loss_key(k) is None and _as_float(v) is not None}
    tokens = _as_float(summary.get(TOKENS_KEY, summary.get("train/tokens")))
    model = config.get("model")
    # Under `wandb agent`, a swept parameter named like a config group replaces the dict.
    model_name = model.get("name") if isinstance(model, Mapping) else model
    user_config = {k: v for k, v in config.items() if not k.startswith("_")}
    record = RunRecord(
        status=FINISHED,
        run_name=config.get("run_name") or display_name or run_id,
        sweep=config.get("sweep") or sweep_id,
        mixture_index=_as_index(mixture_cfg.get("index")),
        mixture_name=mixture_cfg.get("name"),
        mixture=mixture.to_dict(),
        val_loss=val_loss,
        metrics={k: float(v) for k, v in metrics.items()},
        tokens=int(tokens) if tokens is not None else None,
        model=None if model_name is None else str(model_name),
        n_params=config.get("n_params"),
        corpus=_corpus_identity(config),
        seed=config.get("seed"),
        wandb={
            "id": run_id,
            "project": project,
            "entity": entity,
            "mode": "online",
            "dir": None,
            "sweep_id": sweep_id,
            "url": url,
        },
        config=user_config,
        started_at=created_at,
        wall_s=_as_float(summary.get("_runtime")),
    )
    return record, ""


def _corpus_identity(config: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """The corpus a run trained on: its logged `corpus` identity, else what `data` says."""
    corpus = config.get("corpus")
    if isinstance(corpus, Mapping):
        return dict(corpus)
    data = config.get("data")
    if isinstance(data, Mapping):
        tokenizer = data.get("tokenizer")
        return {
            "name": data.get("name"),
            "path": data.get("dir"),
            "content_hash": None,
            "tokenizer": tokenizer.get("kind") if isinstance(tokenizer, Mapping) else tokenizer,
        }
    return None


@contextmanager
def _client_retry_settings(cfg: WandbSourceConfig) -> Iterator[None]:
    """Apply the retry/timeout knobs to the Api about to be created, then restore the globals.

    `wandb.Api()` copies wandb's global settings when it is created; these `x_graphql_*`
    settings are what wandb-core's GraphQL client reads (equivalently: env vars
    WANDB__GRAPHQL_RETRY_MAX, WANDB__GRAPHQL_RETRY_WAIT_MIN_SECONDS, ..._MAX_SECONDS,
    WANDB_HTTP_TIMEOUT, which these values override for this pull only).
    """
    from wandb.sdk import wandb_setup

    settings = wandb_setup.singleton().settings
    wanted = {
        "x_graphql_retry_max": cfg.retries,
        "x_graphql_retry_wait_min_seconds": float(cfg.retry_wait_s),
        "x_graphql_retry_wait_max_seconds": float(cfg.retry_wait_max_s),
        "x_graphql_timeout_seconds": float(cfg.timeout_s),
    }
    saved = {key: getattr(settings, key) for key in wanted}
    try:
        for key, value in wanted.items():
            setattr(settings, key, value)
        yield
    finally:
        for key, value in saved.items():
            setattr(settings, key, value)


#: wandb-core's words when it retried a request and gave up (network down, timeouts, 429/5xx).
_GAVE_UP = "giving up after"
#: The misleading prefix wandb puts on any failure of its login check, the unreachable server included.
_LOGIN_PREFIX = re.compile(r"^Failed to verify credentials with \S+: ")


def _is_transient(err: BaseException) -> bool:
    """Worth another attempt: the service failed, timed out or could not be reached.

    Not: a bad or missing key, a wrong path, a GraphQL error (the server answered, and will
    answer the same again). wandb-core reports a request it retried and gave up on with
    http_status 0 and "giving up after N attempt(s)" (also inside the AuthenticationError of
    its login check when the server is unreachable), and a GraphQL error with status 0 too.
    """
    from wandb.errors import AuthenticationError, CommError, UsageError
    from wandb.sdk.lib.service.service_connection import WandbApiFailedError

    gave_up = _GAVE_UP in str(err)
    if isinstance(err, (AuthenticationError, UsageError)):
        return gave_up
    if isinstance(err, WandbApiFailedError):
        status = getattr(getattr(err, "response", None), "http_status", None) or 0
        return gave_up or status == 429 or status >= 500
    return isinstance(err, (CommError, TimeoutError, ConnectionError))


def _transient_reason(err: BaseException) -> str:
    """The failure in a few words, without wandb's claim that the credentials are at fault."""
    text = str(err).strip() or type(err).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = _LOGIN_PREFIX.sub("", lines[0])
    cause = next((line for line in lines[1:] if line.startswith("while retrying:")), "")
    return f"{first} ({cause})" if cause and cause not in first else first


def _permanent_error(err: BaseException, path: str) -> WandbSourceError:
    from wandb.errors import AuthenticationError, UsageError
    from wandb.sdk.lib.service.service_connection import WandbApiFailedError

    message = _first_line(err)
    status = getattr(getattr(err, "response", None), "http_status", None) or 0
    if isinstance(err, (AuthenticationError, UsageError)) or status in (401, 403):
        fix = "set WANDB_API_KEY (or run `wandb login`) for the server in WANDB_BASE_URL"
    elif "Could not find project" in message:
        fix = "check source.wandb.entity and source.wandb.project"
    elif isinstance(err, WandbApiFailedError):
        # The server answered with an error (GraphQL, 400, 404): asking again will not help.
        message = f"the server answered with an error: {message.removeprefix('input: ')}"
        fix = "check source.wandb.entity, source.wandb.project and the selector (source.wandb.sweep / group / tags)"
    else:
        fix = "check source.wandb.entity, source.wandb.project and the selector (source.wandb.sweep / group / tags)"
    return WandbSourceError(f"cannot pull runs from W&B {path}: {message}; {fix}")


def _describe_filters(filters: Mapping[str, Any]) -> list[str]:
    parts = []
    for clause in filters.get("$and", []):
        for key, value in clause.items():
            parts.append(f"{key}={value['$in'] if isinstance(value, Mapping) else value}")
    return parts


def _as_float(value: Any) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _as_index(value: Any) -> Optional[int]:
    number = _as_float(value)
    return int(number) if number is not None and number.is_integer() else None


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


def _stderr(message: str) -> None:
    print(f"[regmix] {message}", file=sys.stderr)
