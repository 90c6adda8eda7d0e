"""The loopback W&B fake: loopback only, strict about unknown operations, pages and filters like W&B."""

from __future__ import annotations

import base64
import json
import math
import socket
import urllib.error
import urllib.request

import pytest

from tests.fakes import DUMMY_API_KEY, FakeWandb, fake_wandb_url
from tests.fakes.graphql_select import parse_operation, select
from tests.fakes.run_filters import MISSING, UnsupportedFilter, matches


def post(url: str, payload: dict, *, key: str = DUMMY_API_KEY, path: str = "/graphql") -> tuple[int, dict]:
    """A raw request as wandb-core sends it (HTTP basic auth `api:<key>`)."""
    request = urllib.request.Request(
        url + path,
        data=json.dumps(payload).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"api:{key}".encode()).decode(),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def fake(monkeypatch):
    with FakeWandb() as backend:
        monkeypatch.setenv("WANDB_BASE_URL", backend.url)
        monkeypatch.setenv("WANDB_API_KEY", DUMMY_API_KEY)
        yield backend


def test_binds_loopback_on_an_ephemeral_port_and_stops_at_exit():
    with FakeWandb() as fake:
        host, port = fake.server_address
        assert host == "127.0.0.1" and port > 0
        assert fake.url == f"http://127.0.0.1:{port}" and fake.is_running
    assert not fake.is_running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with fake_wandb_url() as url:
        assert url.startswith("http://127.0.0.1:")


def test_unknown_operation_is_answered_with_an_error_and_fails_the_test():
    with pytest.raises(AssertionError, match="query DropAllRuns"):
        with FakeWandb() as fake:
            status, body = post(fake.url, {"query": "query DropAllRuns { project { id } }"})
            # A GraphQL error, not a 5xx: the client gives up at once instead of retrying for minutes.
            assert status == 200 and "unknown operation" in body["errors"][0]["message"]
            assert fake.unknown_operations == ["query DropAllRuns"]


def test_unknown_operation_sent_by_the_real_client_fails_fast(fake):
    import wandb

    api = wandb.Api(timeout=20)
    with pytest.raises(Exception, match="unknown operation"):
        list(api.projects(fake.entity))
    assert fake.unknown_operations == ["query GetProjects"]
    with pytest.raises(AssertionError, match="GetProjects"):
        fake.assert_healthy()
    fake.unknown_operations.clear()  # this test expected it


def test_wrong_key_is_refused_and_no_key_is_kept_in_the_logs(fake):
    status, _ = post(fake.url, {"query": "query Viewer { viewer { id } }"}, key="f" * 40)
    assert status == 401 and fake.auth_failures == 1
    status, body = post(fake.url, {"query": "query Viewer { viewer { id entity apiKeys { edges { node { id } } } } }"})
    assert status == 200 and body["data"]["viewer"]["entity"] == fake.entity
    recorded = json.dumps([fake.request_log, fake.unknown_requests, fake.missing_fields, dict(fake.request_counts)])
    assert DUMMY_API_KEY not in recorded and "f" * 40 not in recorded and DUMMY_API_KEY not in json.dumps(body)


def test_pages_like_the_real_server_through_the_real_client(fake):
    import wandb

    names = [fake.add_run(config={"i": i}, summary={"loss": i}).name for i in range(30)]
    fake.reset_counts()
    api = wandb.Api(timeout=20)
    runs = api.runs(f"{fake.entity}/{fake.project}", per_page=7, lazy=False)
    assert [r.id for r in runs] == names  # default order: oldest first
    assert len(runs) == 30 and fake.request_counts["Runs"] == math.ceil(30 / 7)
    newest_first = api.runs(f"{fake.entity}/{fake.project}", order="-created_at", per_page=100)
    assert [r.id for r in newest_first] == names[::-1]


def test_server_side_filters_through_the_real_client(fake):
    import wandb

    for i in range(12):
        fake.add_run(
            config={"opt": {"lr": i / 10}},
            summary={"loss": 12 - i},
            state="finished" if i % 3 else "crashed",
            group="even" if i % 2 == 0 else "odd",
            tags=["a"] if i < 6 else ["b", "c"],
        )
    api = wandb.Api(timeout=20)
    path = f"{fake.entity}/{fake.project}"

    def lrs(filters):
        return sorted(r.config["opt"]["lr"] for r in api.runs(path, filters=filters, per_page=100, lazy=False))

    assert len(lrs({"state": "finished"})) == 8
    assert lrs({"$and": [{"state": "finished"}, {"group": "even"}]}) == [0.2, 0.4, 0.8, 1.0]
    assert lrs({"tags": {"$in": ["c"]}, "state": "crashed"}) == [0.6, 0.9]
    assert lrs({"config.opt.value.lr": {"$gte": 1.0}}) == [1.0, 1.1]
    assert lrs({"summary_metrics.loss": {"$lt": 3}}) == [1.0, 1.1]
    with pytest.raises(Exception):
        lrs({"state": {"$where": "1"}})
    assert fake.unknown_operations == ["Runs: filter operator $where"]
    fake.unknown_operations.clear()  # this test expected it


def test_config_comes_back_in_w_and_b_storage_form(fake):
    run = fake.add_run(config={"mixture": {"weights": {"a": 1.0}}, "mixture.index": 4})
    query = (
        "query Run($project: String!, $entity: String!, $name: String!) "
        "{ project(name: $project, entityName: $entity) { run(name: $name) { config } } }"
    )
    variables = {"project": fake.project, "entity": fake.entity, "name": run.name}
    _, body = post(fake.url, {"query": query, "variables": variables})
    stored = json.loads(body["data"]["project"]["run"]["config"])
    assert stored["mixture"]["value"] == {"weights": {"a": 1.0}} and stored["mixture.index"]["value"] == 4
    assert run.plain_config["mixture"] == {"weights": {"a": 1.0}}


def test_file_stream_moves_a_run_through_its_states(fake):
    run = fake.add_run(state="pending", config={})
    path = f"/files/{fake.entity}/{fake.project}/{run.name}/file_stream"
    history = {"offset": 0, "content": [json.dumps({"loss": 1.0, "_step": 0})]}
    summary = {"offset": 0, "content": [json.dumps({"val/a/loss": 2.5})]}
    files = {"wandb-history.jsonl": history, "wandb-summary.json": summary}
    assert post(fake.url, {"files": files}, path=path)[0] == 200
    assert run.state == "running" and run.history == [{"loss": 1.0, "_step": 0}]
    assert run.summary == {"val/a/loss": 2.5}
    post(fake.url, {"preempting": True}, path=path)
    post(fake.url, {"complete": True, "exitcode": 143}, path=path)
    assert run.state == "preempted" and run.exitcode == 143


def test_filters_follow_mongo_semantics():
    doc = {"state": "finished", "tags": ["x", "y"], "config.lr": 0.1, "group": None}

    def lookup(key):
        return doc.get(key, MISSING)

    assert matches(lookup, {"tags": "x"}) and not matches(lookup, {"tags": "z"})
    assert matches(lookup, {"tags": {"$in": ["z", "y"]}}) and matches(lookup, {"tags": {"$nin": ["z"]}})
    assert matches(lookup, {"$or": [{"state": "crashed"}, {"config.lr": {"$gt": 0.05, "$lte": 0.1}}]})
    assert not matches(lookup, {"$nor": [{"state": "finished"}]})
    assert matches(lookup, {"sweep": {"$exists": False}}) and matches(lookup, {"state": {"$regex": "^fin"}})
    assert matches(lookup, {"state": {"$not": {"$eq": "crashed"}}}) and matches(lookup, {"state": {"$ne": "x"}})
    with pytest.raises(UnsupportedFilter):
        matches(lookup, {"$text": {"$search": "x"}})


def test_answers_are_trimmed_to_the_selection_with_aliases_and_fragments():
    op = parse_operation(
        """#graphql
        query Q($n: String!) { project(name: $n) { renamed: name ...F ... on Project { extra } } }
        fragment F on Project { runs(first: 2) { edges { node { id } } } }
        """
    )
    answer = {"project": {"name": "p", "secret": 1, "runs": {"edges": [{"node": {"id": "r1", "x": 2}}]}}}
    missing: list[str] = []
    assert select(answer, op, missing) == {
        "project": {"renamed": "p", "runs": {"edges": [{"node": {"id": "r1"}}]}, "extra": None}
    }
    assert op.kind == "query" and op.name == "Q" and missing == ["project.extra"]


def test_sweeps_are_created_and_read_back_through_the_real_client(fake):
    import wandb

    spec = {"program": "train.py", "method": "grid", "parameters": {"mixture.index": {"values": [0, 1, 2]}}}
    sweep_id = wandb.sweep(spec, entity=fake.entity, project=fake.project)
    assert fake.sweeps[(fake.entity, fake.project, sweep_id)].config == spec
    sweep = wandb.Api(timeout=20).sweep(f"{fake.entity}/{fake.project}/{sweep_id}")
    assert sweep.config == spec and sweep.state == "RUNNING"
    assert fake.request_counts["UpsertSweep"] == 1 and fake.request_counts["GetSweep"] == 1
