"""A loopback fake of the W&B backend, so the real wandb client can be tested without a server.

No W&B server is reachable from CI and none can be installed, so tests run the real client
(`wandb.Api`, `wandb agent`, online `wandb.init`) against this standard-library HTTP server on
127.0.0.1 (an ephemeral port), reached with `WANDB_BASE_URL=<fake.url>` and a dummy
`WANDB_API_KEY`. It answers the GraphQL operations wandb 0.31 sends (found by reading the
client and by logging what arrives), keeps runs and sweeps in memory, counts requests per
operation, pages and filters runs as the real server does, and runs a grid sweep controller
(W&B's order: the product of the parameters' values, each point handed out once).

An operation it does not know is answered with a GraphQL error *and recorded* in
`unknown_operations`; `assert_healthy()` (called on exit by default) then fails the test. A
GraphQL error is not retried by the client, whereas an HTTP 5xx would be retried up to 20
times 2-60 s apart and hang the test. The API key is checked but never stored or logged.

    with FakeWandb() as fake:
        fake.add_run(config={...}, summary={...})
        with fake.client_env():
            runs = wandb.Api().runs(f"{fake.entity}/{fake.project}")
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import os
import random
import re
import string
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

from .graphql_select import GraphQLSyntaxError, parse_operation, select
from .run_filters import MISSING, UnsupportedFilter, matches
from .wandb_artifacts import ArtifactStore
from .wandb_store import EPOCH, FakeAgent, FakeRun, FakeSweep, b64, iso, to_storage_form

#: A syntactically valid W&B key (wandb rejects keys shorter than 40 characters). Not a secret.
DUMMY_API_KEY = "0123456789abcdef0123456789abcdef01234567"

_LOOPBACK = "127.0.0.1"  # never 0.0.0.0: the fake must not be reachable from other hosts
_ID_ALPHABET = string.ascii_lowercase + string.digits  # W&B run and sweep ids: 8 of these
_FILE_STREAM = re.compile(r"^/files/(?P<entity>[^/]+)/(?P<project>[^/]+)/(?P<run>[^/]+)/file_stream$")
_STORAGE_PREFIX = "/storage/"
_TELEMETRY_PREFIX = "/sdk/otel/v1/"


class _GraphQLError(Exception):
    """Answer the operation with this GraphQL error (a known operation asked for something absent)."""

    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.status = status


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an in-flight request never blocks shutdown
    allow_reuse_address = False
    fake: "FakeWandb"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up a keep-alive connection is normal; anything else is a fake bug."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        self.fake.server_errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Go client in wandb-core expects
    # Headers and body go out in two writes; with Nagle on, the second waits for the client's
    # delayed ACK (~40 ms a response on Linux), which would dominate every benchmark figure.
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        try:
            self.server.fake._dispatch(self)
        except (ConnectionResetError, BrokenPipeError):
            raise
        except Exception as err:  # a bug in the fake: answer without a retryable status, record it
            self.server.fake.server_errors.append(traceback.format_exc())
            _send_json(self, 200, {"errors": [{"message": f"fake W&B backend crashed: {err!r}"}], "data": None})

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silent: a request line must never reach a log (and with it anything secret)."""


class FakeWandb:
    """The fake backend. A context manager: `with FakeWandb() as fake: ... fake.url ...`.

    `fake.url` is the base URL for `WANDB_BASE_URL`; `client_env()` sets it (and the dummy key,
    online mode) for the duration of a block. On exit the server thread is shut down and,
    unless `strict=False`, `assert_healthy()` fails on any unknown operation.
    """

    def __init__(
        self,
        *,
        entity: str = "regmix-tests",
        project: str = "regmix",
        api_key: str = DUMMY_API_KEY,
        seed: int = 0,
        strict: bool = True,
        latency_s: float = 0.0,
    ) -> None:
        self.entity = entity
        self.latency_s = latency_s
        """Delay added to every GraphQL answer (seconds): a WAN round trip, for benchmarks."""
        self.project = project
        self.strict = strict
        self._api_key = api_key
        self._expected_auth = "Basic " + b64(f"api:{api_key}")
        self._rng = random.Random(seed)  # run/sweep ids: deterministic per fake
        self._lock = threading.RLock()
        self._seq = 0
        self.runs: dict[tuple[str, str, str], FakeRun] = {}
        self.sweeps: dict[tuple[str, str, str], FakeSweep] = {}
        self.agents: dict[str, FakeAgent] = {}
        self._resuming: set[tuple[str, str, str]] = set()
        self.projects: set[tuple[str, str]] = {(entity, project)}
        self.request_counts: Counter[str] = Counter()
        """Requests per GraphQL operation name (and 'file_stream', 'storage PUT', ...)."""
        self.request_log: list[tuple[str, str, str]] = []
        """(HTTP method, path, operation) of every request, in arrival order."""
        self.unknown_operations: list[str] = []
        self.unknown_requests: list[dict[str, Any]] = []
        """Query text and variables of each unknown GraphQL operation (to write its resolver)."""
        self.missing_fields: list[str] = []
        """'<operation>: <field path>' selected by a client but not known to the fake."""
        self.auth_failures = 0
        self.server_errors: list[str] = []
        """Tracebacks of exceptions inside the fake itself (a bug in the fake fails the test too)."""
        self.storage: dict[str, bytes] = {}
        self._failures: Counter[str] = Counter()
        self._failures_after: Counter[str] = Counter()
        self._failure_status = 500
        self._failure_message = "injected failure"
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._resolvers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "Viewer": self._viewer,
            "GetViewer": self._viewer,
            "GetDefaultEntity": self._viewer,
            "Runs": self._runs_page,
            "Run": self._one_run,
            "RunState": self._one_run,
            "RunResumeStatus": self._resume_status,
            "GetSweep": self._sweep_query,
            "GetSweepLegacy": self._sweep_query,
            "GetSweepState": self._sweep_query,
            "SweepWithRuns": self._sweep_query,
            "CreateAgent": self._create_agent,
            "Heartbeat": self._heartbeat,
            "UpsertBucket": self._upsert_bucket,
            "DeleteRun": self._delete_run,
            "UpsertSweep": self._upsert_sweep,
            "CreateRunFiles": self._create_run_files,
            "ServerFeaturesQuery": self._server_features,
            "OrganizationCoreWeaveOrganizationID": self._entity_organization,
        }
        self.artifacts = ArtifactStore(self)
        """Artifact versions runs logged (`run.log_artifact`, logged tables)."""
        self._resolvers.update(self.artifacts.resolvers())

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeWandb":
        """Bind 127.0.0.1 on an ephemeral port and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server((_LOOPBACK, 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-wandb", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down and wait (bounded) for its thread."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> "FakeWandb":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        if self.strict and exc_type is None:
            self.assert_healthy()

    @property
    def server_address(self) -> tuple[str, int]:
        """(host, port) the server is bound to."""
        if self._server is None:
            raise RuntimeError("the fake W&B backend is not running; use `with FakeWandb() as fake:`")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """Base URL for `WANDB_BASE_URL`."""
        host, port = self.server_address
        return f"http://{host}:{port}"

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def client_env(self, *, mode: str = "online") -> "_EnvPatch":
        """Context manager: point the wandb client at this fake (and restore the env after)."""
        return _EnvPatch(
            {
                "WANDB_BASE_URL": self.url,
                "WANDB_API_KEY": self._api_key,
                "WANDB_MODE": mode,
                "WANDB_ENTITY": self.entity,
                "WANDB_PROJECT": self.project,
            }
        )

    def assert_healthy(self) -> None:
        """Fail (AssertionError) on an unknown operation or path, or on an error inside the fake."""
        if self.server_errors:
            raise AssertionError("the fake W&B backend raised:\n" + "\n".join(self.server_errors))
        if self.unknown_operations:
            raise AssertionError(
                "the fake W&B backend received operations it does not implement (a wandb client "
                f"change?): {self.unknown_operations}"
            )

    # ------------------------------------------------------------------ store

    def _next_id(self) -> str:
        return "".join(self._rng.choice(_ID_ALPHABET) for _ in range(8))

    def add_run(
        self,
        *,
        config: Optional[Mapping[str, Any]] = None,
        summary: Optional[Mapping[str, Any]] = None,
        state: str = "finished",
        name: Optional[str] = None,
        display_name: Optional[str] = None,
        sweep: Optional[str] = None,
        group: Optional[str] = None,
        tags: tuple[str, ...] | list[str] = (),
        job_type: Optional[str] = None,
        entity: Optional[str] = None,
        project: Optional[str] = None,
        storage_config: Optional[Mapping[str, Any]] = None,
    ) -> FakeRun:
        """Store a run. `config` is the plain (nested) config; `storage_config` the raw stored form."""
        with self._lock:
            entity = entity or self.entity
            project = project or self.project
            name = name or self._next_id()
            self._seq += 1
            stored = dict(storage_config) if storage_config is not None else to_storage_form(config or {})
            stored.setdefault("_wandb", {"value": {"cli_version": "0.31.0"}, "desc": None})
            run = FakeRun(
                entity=entity,
                project=project,
                name=name,
                display_name=display_name or f"fake-run-{self._seq}",
                state=state,
                config=stored,
                summary=dict(summary or {}),
                sweep=sweep,
                group=group,
                tags=list(tags),
                job_type=job_type,
                seq=self._seq,
            )
            self.runs[(entity, project, name)] = run
            self.projects.add((entity, project))
            return run

    def add_sweep(
        self,
        config: Mapping[str, Any],
        *,
        name: Optional[str] = None,
        entity: Optional[str] = None,
        project: Optional[str] = None,
    ) -> str:
        """Store a sweep (its spec as `wandb sweep` would upload it); returns the sweep id."""
        with self._lock:
            entity = entity or self.entity
            project = project or self.project
            name = name or self._next_id()
            self._seq += 1
            self.sweeps[(entity, project, name)] = FakeSweep(entity, project, name, dict(config), self._seq)
            self.projects.add((entity, project))
            return name

    def get_run(self, name: str, *, entity: Optional[str] = None, project: Optional[str] = None) -> FakeRun:
        return self.runs[(entity or self.entity, project or self.project, name)]

    def fail_next(
        self, operation: str, times: int = 1, *, status: int = 500, message: str = "injected failure", after: int = 0
    ) -> None:
        """Answer the next `times` requests of GraphQL `operation` with a GraphQL error `message`
        under HTTP `status`: 5xx/429 a flaky server (the client retries those, up to its retry
        limit), 200 the error a server gives for a query it cannot answer (an unknown entity), 401
        a rejected key. `after` requests of `operation` are answered normally first (a failure
        in the middle of a paged pull).
        """
        with self._lock:
            self._failures_after[operation] = after
            self._failures[operation] += times
            self._failure_status = status
            self._failure_message = message

    def heal(self) -> None:
        """Forget the failures `fail_next` still had to inject: the server is healthy again."""
        with self._lock:
            self._failures.clear()
            self._failures_after.clear()

    def reset_counts(self) -> None:
        with self._lock:
            self.request_counts.clear()
            self.request_log.clear()

    @property
    def graphql_requests(self) -> int:
        """GraphQL requests received (every operation, known or not)."""
        return sum(n for op, n in self.request_counts.items() if not op.startswith("HTTP "))

    # ------------------------------------------------------------------ HTTP

    def _dispatch(self, handler: _Handler) -> None:
        path = handler.path.split("?", 1)[0]
        body = _read_body(handler)
        method = handler.command
        if path.startswith(_STORAGE_PREFIX):  # pre-signed upload URLs: no auth, like a bucket
            self._storage(handler, method, path, body)
            return
        if method == "POST" and path.startswith(_TELEMETRY_PREFIX):
            # wandb-core's own OpenTelemetry export (unauthenticated): accepted and dropped.
            self._count("HTTP telemetry", method, path)
            _send_bytes(handler, 200, b"", "application/x-protobuf")
            return
        stream = _FILE_STREAM.match(path)
        if not (method == "POST" and (path == "/graphql" or stream)):
            self._unknown(f"HTTP {method} {path}", method, path)
            _send_json(handler, 404, {"error": f"fake W&B backend: no route {method} {path}"})
            return
        if handler.headers.get("Authorization") != self._expected_auth:
            with self._lock:
                self.auth_failures += 1
                self.request_log.append((method, path, "HTTP 401"))
            _send_json(handler, 401, {"errors": [{"message": "fake W&B backend: invalid API key"}]})
            return
        if stream:
            self._file_stream(handler, stream["entity"], stream["project"], stream["run"], body)
        else:
            self._graphql(handler, body)

    def _count(self, operation: str, method: str, path: str) -> None:
        with self._lock:
            self.request_counts[operation] += 1
            self.request_log.append((method, path, operation))

    def _unknown(self, what: str, method: str, path: str) -> None:
        with self._lock:
            self.unknown_operations.append(what)
            self.request_log.append((method, path, what))

    def _graphql(self, handler: _Handler, body: bytes) -> None:
        try:
            payload = json.loads(body or b"{}")
            query = payload.get("query") or ""
            variables = payload.get("variables") or {}
            op = parse_operation(query, payload.get("operationName") or None)
        except (json.JSONDecodeError, GraphQLSyntaxError) as err:
            self._unknown(f"unreadable GraphQL request ({err})", "POST", "/graphql")
            _send_json(handler, 200, {"errors": [{"message": f"fake W&B backend: {err}"}], "data": None})
            return
        name = payload.get("operationName") or op.name or "<anonymous>"
        resolver = self._resolvers.get(name)
        if resolver is None:
            self._unknown(f"{op.kind} {name}", "POST", "/graphql")
            with self._lock:
                self.unknown_requests.append({"operation": name, "query": query, "variables": variables})
            message = f"fake W&B backend: unknown operation {op.kind} {name}"
            _send_json(handler, 200, {"errors": [{"message": message}], "data": None})
            return
        self._count(name, "POST", "/graphql")
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        with self._lock:
            flaky = self._failures.get(name, 0) > 0 and self._failures_after.get(name, 0) == 0
            if flaky:
                self._failures[name] -= 1
            elif self._failures_after.get(name, 0) > 0:
                self._failures_after[name] -= 1
        if flaky:
            _send_json(handler, self._failure_status, {"errors": [{"message": f"fake W&B backend: {self._failure_message}"}]})
            return
        try:
            with self._lock:
                answer = resolver(variables)
                missing: list[str] = []
                data = select(answer, op, missing)
                self.missing_fields.extend(f"{name}: {path}" for path in missing)
        except (_GraphQLError, UnsupportedFilter) as err:
            status = err.status if isinstance(err, _GraphQLError) else 200
            if isinstance(err, UnsupportedFilter):
                self.unknown_operations.append(f"{name}: {err}")
            _send_json(handler, status, {"errors": [{"message": f"fake W&B backend: {err}"}], "data": None})
            return
        _send_json(handler, 200, {"data": data})

    def _storage(self, handler: _Handler, method: str, path: str, body: bytes) -> None:
        key = path[len(_STORAGE_PREFIX) :]
        if method == "PUT":
            self._count("HTTP PUT storage", method, path)
            with self._lock:
                self.storage[key] = body
                entity, project, run_name, file_name = (key.split("/", 3) + ["", "", "", ""])[:4]
                run = self.runs.get((entity, project, run_name))
                if run is not None and file_name:
                    run.files[file_name] = body
            _send_json(handler, 200, {})
        elif method == "GET" and key in self.storage:
            self._count("HTTP GET storage", method, path)
            _send_bytes(handler, 200, self.storage[key], "application/octet-stream")
        else:
            self._unknown(f"HTTP {method} {path}", method, path)
            _send_json(handler, 404, {"error": "no such object"})

    def _file_stream(self, handler: _Handler, entity: str, project: str, run_name: str, body: bytes) -> None:
        """What a live run streams: history rows, summary, console, and at the end `complete`."""
        self._count("HTTP file_stream", "POST", handler.path)
        payload = json.loads(body or b"{}")
        with self._lock:
            run = self.runs.get((entity, project, run_name))
            if run is None:
                run = self.add_run(name=run_name, entity=entity, project=project, state="running")
            if run.state == "pending":
                run.state = "running"
            files = payload.get("files") or {}
            for line in (files.get("wandb-history.jsonl") or {}).get("content") or []:
                run.history.append(json.loads(line))
            summary_lines = (files.get("wandb-summary.json") or {}).get("content") or []
            if summary_lines:
                run.summary = json.loads(summary_lines[-1])
            if payload.get("preempting"):
                run.preempting = True
                run.state = "preempting"
            if payload.get("complete"):
                run.exitcode = payload.get("exitcode")
                if run.preempting:
                    run.state = "preempted"
                    sweep = self.sweeps.get((entity, project, run.sweep)) if run.sweep else None
                    if sweep is not None and run.name not in sweep.queue:
                        sweep.queue.append(run.name)
                else:
                    run.state = "finished" if run.exitcode == 0 else "failed"
        _send_json(handler, 200, {"exitcode": None, "limits": {}})

    # ------------------------------------------------------------------ GraphQL resolvers

    def _project(self, variables: Mapping[str, Any], *, name_key: str = "project", entity_key: str = "entity"):
        entity = variables.get(entity_key) or self.entity
        project = variables.get(name_key) or self.project
        return entity, project, (entity, project) in self.projects

    def _project_node(self, entity: str, project: str) -> dict[str, Any]:
        return {
            "id": b64(f"Project:{entity}/{project}"),
            "internalId": b64(f"Project:{entity}/{project}"),
            "name": project,
            "entityName": entity,
            "readOnly": False,
            "entity": {"id": b64(f"Entity:{entity}"), "name": entity},
        }

    def _viewer(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "viewer": {
                "id": b64(f"User:{self.entity}"),
                "name": self.entity,
                "username": self.entity,
                "entity": self.entity,
                "email": f"{self.entity}@example.invalid",
                "admin": False,
                "flags": "{}",
                "deletedAt": None,
                "apiKeys": {"edges": []},  # a real server lists key names here; never the fake's key
                "teams": {"edges": []},
            }
        }

    def _run_node(self, run: FakeRun) -> dict[str, Any]:
        failed = run.state in ("failed", "crashed")
        return {
            "__typename": "Run",
            "id": run.storage_id,
            "projectId": str(abs(hash((run.entity, run.project))) % 10**6),
            "name": run.name,
            "displayName": run.display_name,
            "state": run.state,
            "config": json.dumps(run.config),
            "summaryMetrics": json.dumps(run.summary),
            "systemMetrics": "{}",
            "sweepName": run.sweep,
            "group": run.group,
            "jobType": run.job_type,
            "tags": list(run.tags),
            "commit": None,
            "readOnly": False,
            "createdAt": run.created_at,
            "heartbeatAt": run.created_at,
            "description": None,
            "notes": None,
            "historyLineCount": len(run.history),
            "historyKeys": {"keys": {}, "lastStep": max(len(run.history) - 1, 0)},
            "user": {"name": run.entity, "username": run.entity},
            "host": "fake-host",
            "exitcode": run.exitcode,
            "shouldStop": False,
            "stopped": False,
            "failed": failed,
            "running": run.state == "running",
            "sampledHistory": [[]],
            "project": self._project_node(run.entity, run.project),
        }

    def _resume_status(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """What `wandb.init(id=..., resume=...)` asks first: the run as far as it got (None: a new run).
        `historyTail` is W&B's: a JSON list of the last history lines, each a JSON string; the
        client continues `_step` after the last one."""
        entity = variables.get("entity") or self.entity
        project = variables.get("project") or self.project
        run = self.runs.get((entity, project, variables.get("name")))
        bucket = None
        if run is not None:
            self._resuming.add((entity, project, run.name))  # its next upsert is the resumed start
            bucket = {
                "id": run.storage_id,
                "name": run.name,
                "summaryMetrics": json.dumps(run.summary),
                "displayName": run.display_name,
                "logLineCount": 0,
                "historyLineCount": len(run.history),
                "eventsLineCount": 0,
                "historyTail": json.dumps([json.dumps(row) for row in run.history[-10:]]),
                "eventsTail": "[]",
                "config": json.dumps(run.config),
                "tags": list(run.tags),
                "notes": None,
                "wandbConfig": json.dumps({k: v for k, v in run.config.items() if k == "_wandb"}),
            }
        node = {"id": b64(f"Project:{entity}/{project}"), "name": project,
                "entity": {"id": b64(f"Entity:{entity}"), "name": entity}, "bucket": bucket}
        return {"model": node}

    def _matching_runs(self, entity: str, project: str, filters: Any, order: Optional[str]) -> list[FakeRun]:
        query = json.loads(filters) if isinstance(filters, str) else (filters or {})
        found = [
            run for (e, p, _), run in self.runs.items() if e == entity and p == project and matches(run.lookup, query)
        ]
        order = order or "+created_at"
        descending = order.startswith("-")
        key = order.lstrip("+-")
        if key in ("created_at", "createdAt", "heartbeat_at", "heartbeatAt"):
            found.sort(key=lambda r: r.seq, reverse=descending)
        else:

            def sort_key(run: FakeRun) -> tuple[int, Any]:
                value = run.lookup(key)
                return (1, 0) if value is MISSING or value is None else (0, value)

            found.sort(key=sort_key, reverse=descending)
        return found

    def _runs_page(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """`Runs`: one page of a project's runs, filtered, ordered, after a cursor."""
        entity, project, exists = self._project(variables)
        if not exists:
            return {"project": None}
        ordered = self._matching_runs(entity, project, variables.get("filters"), variables.get("order"))
        per_page = int(variables.get("perPage") or variables.get("first") or 50)
        start = 0
        cursor = variables.get("cursor") or variables.get("after")
        if cursor:
            seq = int(base64.b64decode(cursor).decode().split(":", 1)[1])
            start = next((i + 1 for i, run in enumerate(ordered) if run.seq == seq), len(ordered))
        page = ordered[start : start + per_page]
        edges = [{"node": self._run_node(run), "cursor": b64(f"run:{run.seq}")} for run in page]
        node = self._project_node(entity, project)
        node["runCount"] = len(ordered)
        node["runs"] = {
            "edges": edges,
            "pageInfo": {
                "endCursor": edges[-1]["cursor"] if edges else None,
                "hasNextPage": start + len(page) < len(ordered),
                "startCursor": edges[0]["cursor"] if edges else None,
                "hasPreviousPage": start > 0,
            },
            "totalCount": len(ordered),
        }
        return {"project": node}

    def _one_run(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        entity, project, exists = self._project(variables)
        if not exists:
            return {"project": None}
        run = self.runs.get((entity, project, variables.get("name")))
        node = self._project_node(entity, project)
        node["run"] = self._run_node(run) if run else None
        return {"project": node}

    def _sweep_node(self, sweep: FakeSweep) -> dict[str, Any]:
        import yaml

        runs = [
            r
            for r in self.runs.values()
            if r.sweep == sweep.name and (r.entity, r.project) == (sweep.entity, sweep.project)
        ]
        return {
            "__typename": "Sweep",
            "id": sweep.storage_id,
            "name": sweep.name,
            "displayName": sweep.config.get("name"),
            "method": sweep.config.get("method"),
            "state": sweep.state,
            "description": sweep.config.get("description"),
            "bestLoss": None,
            "config": yaml.safe_dump(sweep.config, sort_keys=False),
            "createdAt": iso(EPOCH + timedelta(seconds=sweep.seq)),
            "updatedAt": iso(EPOCH + timedelta(seconds=sweep.seq)),
            "heartbeatAt": iso(EPOCH + timedelta(seconds=sweep.seq)),
            "earlyStopJobRunning": False,
            "controller": None,
            "scheduler": None,
            "runCount": len(runs),
            "runCountExpected": None,
            "runs": {"edges": [{"node": self._run_node(r)} for r in runs]},
        }

    def _sweep_query(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """GetSweep / GetSweepLegacy / GetSweepState / SweepWithRuns: `project { sweep(...) }`."""
        entity, project, exists = self._project(variables)
        if not exists:
            return {"project": None}
        sweep_name = variables.get("name") or variables.get("sweep")
        sweep = self.sweeps.get((entity, project, sweep_name))
        node = self._project_node(entity, project)
        node["sweep"] = self._sweep_node(sweep) if sweep else None
        return {"project": node}

    def _upsert_sweep(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """`wandb sweep` / `wandb.sweep()` (create, with a YAML config) or a state change (by id)."""
        import yaml

        if variables.get("id"):
            sweep = next((sw for sw in self.sweeps.values() if sw.storage_id == variables["id"]), None)
            if sweep is None:
                raise _GraphQLError(f"sweep {variables['id']!r} not found")
            if variables.get("state"):
                sweep.state = variables["state"]
            if variables.get("config"):
                sweep.config = yaml.safe_load(variables["config"])
            warnings_out: list[str] = []
        else:
            config = yaml.safe_load(variables.get("config") or "") or {}
            entity, project, _ = self._project(variables, name_key="projectName", entity_key="entityName")
            sweep = self.sweeps[(entity, project, self.add_sweep(config, entity=entity, project=project))]
            warnings_out = _sweep_config_warnings(config)
        node = {**self._sweep_node(sweep), "project": self._project_node(sweep.entity, sweep.project)}
        return {"upsertSweep": {"sweep": node, "configValidationWarnings": warnings_out, "inserted": True}}

    def _create_agent(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        entity, project, _ = self._project(variables, name_key="projectName", entity_key="entityName")
        sweep = self.sweeps.get((entity, project, variables.get("sweep")))
        if sweep is None:
            raise _GraphQLError(f"sweep {entity}/{project}/{variables.get('sweep')} not found")
        agent_id = b64(f"Agent:{len(self.agents) + 1}")
        self.agents[agent_id] = FakeAgent(agent_id, sweep, str(variables.get("host")))
        return {"createAgent": {"agent": {"id": agent_id, "name": agent_id}}}

    def _heartbeat(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The sweep controller: hand a free agent its next run (grid/random via `sweeps`)."""
        agent = self.agents.get(str(variables.get("id")))
        if agent is None:
            raise _GraphQLError("agent not found", status=404)
        agent.heartbeats += 1
        running = json.loads(variables.get("runState") or "{}")
        sweep = agent.sweep
        if any(running.values()) or sweep.state == "PAUSED":
            commands: list[dict[str, Any]] = []  # one run per agent at a time; a paused sweep waits
        elif sweep.queue or sweep.state == "RUNNING":
            commands = self._next_command(agent)
        else:  # finished or canceled: the agent exits
            commands = [{"type": "exit"}]
        return {"agentHeartbeat": {"agent": {"id": agent.id}, "commands": json.dumps(commands)}}

    def _next_command(self, agent: FakeAgent) -> list[dict[str, Any]]:
        sweep = agent.sweep
        program = sweep.config.get("program")
        if sweep.queue:  # a preempted run goes back to the next free agent, as W&B does
            run = self.runs[(sweep.entity, sweep.project, sweep.queue.pop(0))]
            run.state, run.preempting, run.agent_id = "pending", False, agent.id
            args = {k: run.config[k] for k in _swept_keys(sweep.config) if k in run.config}
            return [{"type": "resume", "run_id": run.name, "args": args, "program": program}]
        members = [
            r for r in self.runs.values() if r.sweep == sweep.name and (r.entity, r.project) == (sweep.entity, sweep.project)
        ]
        suggestion = _next_grid_point(sweep.config, [r.config for r in members])
        if suggestion is None:  # every grid point handed out: this agent is done
            if all(r.state in _TERMINAL_STATES for r in members):
                sweep.state = "FINISHED"  # (else a still-running run may yet be preempted and re-queued)
            return [{"type": "exit"}]
        run = self.add_run(
            storage_config=suggestion,
            state="pending",
            sweep=sweep.name,
            entity=sweep.entity,
            project=sweep.project,
        )
        run.agent_id = agent.id
        return [{"type": "run", "run_id": run.name, "args": suggestion, "program": program}]

    def _delete_run(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        for key, run in list(self.runs.items()):
            if run.storage_id == variables.get("id"):
                del self.runs[key]
                return {"deleteRun": {"clientMutationId": None}}
        raise _GraphQLError(f"run {variables.get('id')!r} not found")

    def _server_features(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """No optional server features: the client takes its most conservative paths."""
        return {"serverInfo": {"features": []}}

    def _entity_organization(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """A personal entity: no organization."""
        return {"entity": {"id": b64(f"Entity:{variables.get('entityName')}"), "organization": None}}

    def _create_run_files(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Upload URLs for a run's files: pre-signed-style URLs on this same server."""
        entity, project, run_name = variables.get("entity"), variables.get("project"), variables.get("run")
        run = self.runs.get((entity, project, run_name))
        if run is None:
            raise _GraphQLError(f"run {entity}/{project}/{run_name} not found")
        files = [
            {"name": name, "uploadUrl": f"{self.url}{_STORAGE_PREFIX}{entity}/{project}/{run_name}/{name}"}
            for name in variables.get("files") or []
        ]
        return {"createRunFiles": {"runID": run.storage_id, "uploadHeaders": [], "files": files}}

    def _upsert_bucket(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """What `wandb.init` (online) and `run.update()` send: create or update a run."""
        entity = variables.get("entity") or self.entity
        project = variables.get("project") or self.project
        name = variables.get("name")
        inserted = False
        run = self.runs.get((entity, project, name)) if name else None
        if run is None and variables.get("id"):
            run = next((r for r in self.runs.values() if r.storage_id == variables["id"]), None)
        if run is None:
            run = self.add_run(name=name, entity=entity, project=project, state="running", storage_config={})
            inserted = True
        if run.state == "pending":
            run.state = "running"
        if not inserted and (run.entity, run.project, run.name) in self._resuming:  # wandb.init(id=..., resume=...)
            self._resuming.discard((run.entity, run.project, run.name))
            run.state, run.preempting, run.exitcode = "running", False, None
        if variables.get("config"):
            incoming = json.loads(variables["config"])
            run.config = {**run.config, **incoming}
        for var, attr in (("displayName", "display_name"), ("groupName", "group"), ("jobType", "job_type")):
            if variables.get(var):
                setattr(run, attr, variables[var])
        if variables.get("sweep"):
            run.sweep = variables["sweep"]
        if variables.get("tags") is not None:
            run.tags = list(variables["tags"])
        if variables.get("summaryMetrics"):
            run.summary = {**run.summary, **json.loads(variables["summaryMetrics"])}
        node = self._run_node(run)
        return {"upsertBucket": {"bucket": node, "inserted": inserted}}


def _sweep_config_warnings(config: Mapping[str, Any]) -> list[str]:
    """What W&B says about a spec (the server sends these back as warnings)."""
    from regmix.sweep.wandb_schema import sweep_config_problems

    return sweep_config_problems(dict(config))


def _next_grid_point(sweep_config: Mapping[str, Any], taken: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The first grid point no run of the sweep holds yet, as run config ({key: {"value": v}}).

    W&B's grid order: the product of each parameter's `values` (or `value`), in the spec's
    order; a point counts as taken once any run (whatever its state) was given it.
    """
    params = sweep_config.get("parameters") or {}
    if sweep_config.get("method") != "grid":
        raise _GraphQLError(f"the fake's controller runs grid sweeps only, not {sweep_config.get('method')!r}")
    names = list(params)
    choices = [p["values"] if "values" in p else [p["value"]] for p in params.values()]
    seen = {json.dumps([_config_value(c.get(n)) for n in names], sort_keys=True) for c in taken}
    for point in itertools.product(*choices):
        if json.dumps(list(point), sort_keys=True) not in seen:
            return {name: {"value": value} for name, value in zip(names, point)}
    return None


def _config_value(item: Any) -> Any:
    """A run config entry's value: W&B stores {"value": v, "desc": ...}."""
    return item.get("value") if isinstance(item, Mapping) else item


def _swept_keys(sweep_config: Mapping[str, Any]) -> list[str]:
    return list((sweep_config.get("parameters") or {}).keys())


_TERMINAL_STATES = ("finished", "failed", "crashed", "killed")


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        body = b"".join(chunks)
    else:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
    if handler.headers.get("Content-Encoding", "").lower() == "gzip" and body:
        body = gzip.decompress(body)
    return body


def _send_bytes(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    _send_bytes(handler, status, json.dumps(payload).encode(), "application/json")


class _EnvPatch:
    """Set environment variables for a block; restore the previous values after it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._saved: dict[str, Optional[str]] = {}

    def __enter__(self) -> dict[str, str]:
        for key, value in self._values.items():
            self._saved[key] = os.environ.get(key)
            os.environ[key] = value
        return dict(self._values)

    def __exit__(self, *exc: Any) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def fake_wandb_url(**kwargs: Any) -> Iterator[str]:
    """`with fake_wandb_url() as url:` -- a fake backend that yields only its base URL."""
    with FakeWandb(**kwargs) as fake:
        yield fake.url
