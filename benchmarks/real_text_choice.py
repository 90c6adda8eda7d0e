"""Real text: does the default fit's mixture beat the token prior at proxy scale?

Builds a corpus from text already on the machine (never downloaded, never committed): the Python
standard library's modules and its test suite, C headers, licence texts, the documentation files
that installed packages ship (.rst/.md), and, held out as the target, the package descriptions
(METADATA) of the installed Python distributions. A byte-level BPE is trained on it; 32 `tiny`
proxies are trained on RegMix mixtures; `run_fit` with its defaults picks a mixture; then the
chosen mixture and the token prior are each trained at proxy scale over 3 seeds.

    python benchmarks/real_text_choice.py [--out runs/real_text] [--vocab 2048] [--proxies 32]

Prints the fit's evidence/status lines, each mixture's target loss per seed, the difference
(chosen - prior) and the seed noise (standard deviation over seeds). Goal: chosen not worse
than the prior beyond seed noise.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import sysconfig
import time
from dataclasses import replace
from pathlib import Path

#: Characters of text per domain (about 1.5 MB: a BPE-2048 tiny proxy then trains in ~15 s).
PER_DOMAIN = 1_500_000
#: Characters per document (long files are cut into pieces of this size).
DOC_CHARS = 8_000


def _files(patterns: list[str]) -> list[str]:
    out: list[str] = []
    for pattern in patterns:
        out += sorted(glob.glob(pattern, recursive=True))
    return [p for p in dict.fromkeys(out) if os.path.isfile(p)]


def domain_sources() -> dict[str, list[str]]:
    """Domain -> files, from the running Python and the system (paths found, not assumed)."""
    stdlib = sysconfig.get_paths()["stdlib"]
    site = sysconfig.get_paths()["purelib"]
    return {
        "py_stdlib": _files([f"{stdlib}/*.py", f"{stdlib}/*/*.py"]),
        "py_tests": _files([f"{stdlib}/test/test_*.py"]),
        "c_headers": _files(["/usr/include/*.h", "/usr/include/*/*.h", "/usr/include/*/*/*.h"]),
        "licenses": _files(["/usr/share/common-licenses/*", "/usr/share/doc/*/copyright"]),
        "pkg_docs": _files([f"{site}/**/*.rst", f"{site}/**/*.md", "/usr/share/doc/**/*.md"]),
        "pkg_metadata": _files([f"{site}/*.dist-info/METADATA"]),  # the held-out target
    }


def build_corpus(path: Path, seed: int = 0) -> dict[str, int]:
    """Write a jsonl of {domain, text} documents; returns characters per domain."""
    import random

    rng = random.Random(seed)
    sizes: dict[str, int] = {}
    with path.open("w") as out:
        for domain, files in domain_sources().items():
            rng.shuffle(files)
            total = 0
            for name in files:
                try:
                    text = Path(name).read_text(encoding="utf-8")
                except (UnicodeDecodeError, OSError):
                    continue
                for begin in range(0, len(text), DOC_CHARS):
                    piece = text[begin : begin + DOC_CHARS]
                    if len(piece.strip()) < 200:
                        continue
                    out.write(json.dumps({"domain": domain, "text": piece}) + "\n")
                    total += len(piece)
                if total >= PER_DOMAIN:
                    break
            sizes[domain] = total
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/real_text")
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--proxies", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=0)
    args = parser.parse_args()

    import numpy as np

    from analysis.fit import run_fit
    from analysis.report import uncertainty_lines
    from regmix.sweep.sample import sample_sweep
    from regmix.config import TrackerConfig
    from regmix.corpus.config import DataConfig, TokenizerConfig
    from regmix.corpus.prepare import prepare_corpus
    from regmix.demo.config import DemoConfig
    from regmix.demo.pipeline import Job, target_loss, train_many
    from regmix.mixture import Mixture
    from regmix.sweep.table import read_mixtures_table

    start = time.perf_counter()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus.jsonl"
    if not corpus.exists():
        sizes = build_corpus(corpus)
        print("corpus characters per domain: " + ", ".join(f"{d} {n:,}" for d, n in sizes.items()))
    target = "pkg_metadata"
    data = DataConfig(
        name="real_text", dir=str(out / "data"), source="text", file=str(corpus), domain_field="domain",
        targets=[target], tokenizer=TokenizerConfig(kind="bpe", vocab_size=args.vocab),
    )
    cfg = DemoConfig(sweep="real_text", out_dir=str(out), data=data, n_mixtures=args.proxies, jobs=args.jobs,
                     tracker=TrackerConfig(mode="disabled", project="regmix-real-text", group="real_text"))
    cfg = replace(cfg, fit=replace(cfg.fit, source=replace(cfg.fit.source, root=str(out / "proxy")),
                                   mixture_dir=str(out / "mixture"), report_dir=str(out / "fit"), sweep="real_text",
                                   name="real_text", simulation=replace(cfg.fit.simulation, n_candidates=1_000_000)))
    cfg.fit.tracker.mode = "disabled"
    meta = prepare_corpus(data)
    domains = meta.train_domains
    table_path = out / "sweeps" / "real_text.mixtures.csv"
    if not table_path.exists():
        sample_sweep(data_dir=data.dir, sweep="real_text", n_mixtures=args.proxies, seed=42, settings=cfg.sampler,
                     out_dir=str(out / "sweeps"), target=target)
    table = read_mixtures_table(table_path, domains)
    proxies = [Job("proxy", Mixture({d: float(r[d]) for d in domains}), "proxy", index=int(r["index"]))
               for _, r in table.iterrows()]
    train_many(cfg, proxies, "proxies")
    fit = run_fit(replace(cfg.fit, target=target, overwrite=True), command="benchmarks/real_text_choice.py")
    print(fit.comparison.round(3).to_string())
    print(f"driver: {fit.drive} ({fit.drive_reason})")
    print("\n".join(uncertainty_lines(fit)))
    prior = Mixture(meta.token_prior(), domains=domains)
    named = {"chosen": fit.mixture, "prior": prior}
    jobs = [Job(label, m, "proxy_check", seed=s) for label, m in named.items() for s in range(args.seeds)]
    records = train_many(cfg, jobs, "chosen and prior, 3 seeds")
    losses = {label: np.array([target_loss(r, target) for j, r in zip(jobs, records) if j.label == label])
              for label in named}
    noise = float(np.mean([v.std(ddof=1) for v in losses.values()]))
    diff = float(losses["chosen"].mean() - losses["prior"].mean())
    print(f"chosen: {fit.mixture}")
    for label, values in losses.items():
        print(f"{label:7} {target} loss per seed: {', '.join(f'{v:.4f}' for v in values)} (mean {values.mean():.4f})")
    print(f"chosen - prior: {diff:+.4f} nats; seed noise (sd over {args.seeds} seeds): {noise:.4f}; "
          f"{'not worse than the prior beyond noise' if diff <= noise else 'WORSE than the prior beyond noise'}")
    print(f"BPE vocabulary {args.vocab}; {args.proxies} proxies; wall {(time.perf_counter() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
