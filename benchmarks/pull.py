"""Pull 1,000 finished runs from the loopback W&B fake: the project's source vs the naive path.

    python benchmarks/pull.py [--runs 1000] [--per-page 1000] [--latency-ms 0]

Both paths use the real wandb client against the same fake backend in the same process:
- project: `analysis.sources.wandb_api.pull_wandb_runs` (finished runs, large pages, lazy=False);
- naive:   `api.sweep(path).runs` (lazy, 10 runs a page), touching `.config` and `.summary`.
Prints GraphQL requests and wall time for each, and the ratios. Exits 1 when the project's
request count misses the goal ceil(runs / page size) + 3. On the loopback a request costs a
few ms; `--latency-ms` adds a server delay per request to stand in for a real network.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

# The W&B fake is test support (tests/fakes/), not part of the package: run from a checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def isolate_wandb_dirs() -> None:
    """Keep every W&B file of the benchmark in a temp dir (the lazy client makes one per run)."""
    home = tempfile.mkdtemp(prefix="regmix-bench-wandb-")
    for key, sub in (("WANDB_DIR", ""), ("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config")):
        os.environ[key] = os.path.join(home, sub)
    os.environ["WANDB_DATA_DIR"] = os.path.join(home, "data")
    os.environ["WANDB_SILENT"] = "true"


def fill(fake, n_runs: int) -> str:
    """n finished proxy runs of one sweep, logged as the training app logs them."""
    from regmix.metrics import val_loss_key

    sweep_id = fake.add_sweep({"method": "grid", "parameters": {"mixture.index": {"values": list(range(n_runs))}}})
    domains = [f"domain{d:02d}" for d in range(17)]  # the paper's 17 Pile domains, by count
    for index in range(n_runs):
        weights = {d: 1 / len(domains) for d in domains}
        fake.add_run(
            config={
                "mixture": {"index": index, "weights": weights},
                "mixture.index": index,
                "model": {"name": "1m"},
                "sweep": "bench",
                "run_name": f"mix{index:04d}",
            },
            summary={**{val_loss_key(d): 3.0 + index / n_runs for d in domains}, "tokens": 10**9},
            sweep=sweep_id,
        )
    return sweep_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--per-page", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="server delay per GraphQL request")
    args = parser.parse_args()
    isolate_wandb_dirs()

    import wandb

    from analysis.sources.wandb_api import WandbSourceConfig, pull_wandb_runs
    from tests.fakes import FakeWandb

    with FakeWandb(latency_s=args.latency_ms / 1000) as fake, fake.client_env():
        sweep_id = fill(fake, args.runs)
        print(
            f"fake W&B backend at {fake.url}: {args.runs} finished runs in sweep {sweep_id}, "
            f"{args.latency_ms:g} ms added per request"
        )
        wandb.Api(timeout=60)  # start wandb-core once, so neither path is charged for it

        fake.reset_counts()
        start = time.perf_counter()
        cfg = WandbSourceConfig(entity=fake.entity, project=fake.project, sweep=sweep_id, per_page=args.per_page)
        pull = pull_wandb_runs(cfg, log=lambda line: None)
        project_s = time.perf_counter() - start
        project_requests = fake.graphql_requests
        assert len(pull.records) == args.runs, pull.summary_line()

        fake.reset_counts()
        start = time.perf_counter()
        api = wandb.Api(timeout=60)
        n_naive = 0
        for run in api.sweep(f"{fake.entity}/{fake.project}/{sweep_id}").runs:
            _ = run.config["mixture"]["weights"], dict(run.summary)
            n_naive += 1
        naive_s = time.perf_counter() - start
        naive_requests = fake.graphql_requests
        assert n_naive == args.runs

    goal = math.ceil(args.runs / args.per_page) + 3
    rows = [
        (f"project source (per_page={args.per_page}, lazy=False)", project_requests, project_s),
        ("naive api.sweep(path).runs (lazy, .config/.summary)", naive_requests, naive_s),
    ]
    for label, requests, seconds in rows:
        print(f"{label:<55} {requests:>6} GraphQL requests  {seconds:8.2f} s wall")
    print(
        f"ratio naive/project: {naive_requests / project_requests:.0f}x requests, "
        f"{naive_s / project_s:.1f}x wall time"
    )
    met = project_requests <= goal
    print(f"goal: project requests <= ceil({args.runs}/{args.per_page}) + 3 = {goal}: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
