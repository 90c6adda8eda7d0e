"""Typed configs of the training side: every default lives here, YAML under conf/ only overrides.

Torch-free (plain dataclasses), so the analysis side and tests can import it cheaply. Hydra
validates YAML and command-line overrides against these schemas (`register_configs`);
library code receives the plain dataclass objects (`to_object`), never a `DictConfig`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import OmegaConf

from regmix.corpus.config import DataConfig, EvalConfig, PrepareAppConfig  # EvalConfig: prepare checks the slice too


@dataclass
class ModelConfig:
    """Shape of the LLaMA-style decoder (RoPE, RMSNorm, SwiGLU, untied embeddings)."""

    name: str = "tiny"
    """Preset name; recorded with every run so the analysis never mixes model sizes."""
    n_layers: int = 2
    d_model: int = 64
    """Residual width."""
    n_heads: int = 4
    d_mlp: int = 128
    """Hidden width of the SwiGLU MLP (per branch)."""
    vocab_size: Optional[int] = None
    """None: the corpus tokenizer's vocabulary (rounded up to a multiple of 64 for fast matmuls)."""
    max_seq_len: int = 2048
    """Longest context the RoPE tables are built for (tokens)."""
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    init_std: float = 0.02


@dataclass
class TrainConfig:
    """Optimisation and budget of one proxy run. Defaults are the paper's proxy recipe."""

    tokens: int = 512 * 2048 * 1000
    """Training tokens per run; steps = tokens // (batch_size * seq_len). Paper: ~1B."""
    batch_size: int = 512
    """Sequences per optimizer step (paper: 512)."""
    micro_batch_size: Optional[int] = None
    """Sequences per forward pass (gradient accumulation); None = batch_size."""
    seq_len: int = 2048
    """Tokens per training sequence (paper: 2048)."""
    lr: float = 4e-4
    warmup_steps: int = 100
    schedule: str = "constant"
    """'constant' after warmup (paper's proxies) or 'cosine' down to min_lr (target runs)."""
    min_lr: float = 1e-5
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    device: str = "auto"
    """'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1', ..."""
    precision: str = "auto"
    """'auto': bf16 autocast on CUDA, fp32 on CPU; or 'fp32' / 'bf16'."""
    compile: bool = False
    """torch.compile the model (CUDA only; ignored on CPU where it rarely pays for tiny runs)."""
    threads: int = 1
    """CPU threads for torch; 0 = torch's default. One thread per process is fastest for tiny
    models on a busy box, and lets N processes use N cores."""
    log_every: int = 10
    """Optimizer steps between logged training points."""
    logits_budget: Optional[int] = None
    """Most logit elements the chunked cross-entropy holds at once; None = per device (CPU 4M,
    CUDA 256M; see regmix.chunked_loss); 0 = the plain loss over the full logits."""
    checkpoint_every: int = 100
    """Optimizer steps between checkpoints in the run folder (0 = none); a preempted run resumes
    from the last one."""
    keep_checkpoint: bool = False
    """Keep `checkpoint.pt` with the final weights (model, optimizer, step) when the run finishes,
    whatever checkpoint_every is; by default a finished run deletes its checkpoint."""
    prefetch: int = 2
    """Batches cut ahead in a background thread while the step runs (regmix.prefetch); 0 = cut
    each batch inside the step. The batches are the same either way."""


@dataclass
class MixtureConfig:
    """Which mixture a run trains on: a row of the sweep's table, explicit weights, or a named entry."""

    name: Optional[str] = None
    """Name of an emitted mixture (conf/mixture/<name>.yaml) or of explicit weights."""
    index: Optional[int] = None
    """Row `index` of the mixtures table."""
    weights: Any = None
    """Explicit domain -> weight mapping (must sum to 1); wins over `index`. Typed Any because
    OmegaConf 2.3 cannot merge a command-line dict into a None `Dict[str, float]` node, nor add
    keys to an empty one under Hydra's struct mode; `Mixture` validates the values instead."""
    table: Optional[str] = "sweeps/${sweep}.mixtures.csv"
    """Mixtures table (CSV: index + one column per domain) that `index` selects from."""
    provenance: Dict[str, Any] = field(default_factory=dict)
    """Where an emitted mixture came from (runs, regressor, scores); logged with the run."""


@dataclass
class TrackerConfig:
    """Experiment tracking: W&B offline (default; no account), online, or disabled."""

    mode: str = "offline"
    project: str = "regmix"
    entity: Optional[str] = None
    group: Optional[str] = "${sweep}"
    """W&B group: all proxies of a sweep compare side by side in the UI."""
    tags: List[str] = field(default_factory=list)
    job_type: str = "proxy"


@dataclass
class TrainAppConfig:
    """`regmix-train`: one proxy (or target) run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    mixture: MixtureConfig = field(default_factory=MixtureConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    sweep: str = "default"
    """Sweep name: selects sweeps/<sweep>.mixtures.csv and the output folder runs/<sweep>/."""
    out_dir: str = "runs/${sweep}"
    run_name: str = "${regmix.run_name:${mixture.index},${mixture.name},${mixture.weights},${seed}}"
    """Folder of this run under out_dir: mix0007, <mixture name>, or w-<hash of weights>; -s<seed> if seed != 0."""
    seed: int = 0
    """Data order and init seed; the paper shares one seed across all proxies."""
    dry_run: bool = False
    """Print the resolved config and the chosen mixture, train nothing."""


@dataclass
class SamplerConfig:
    """RegMix's mixture generator (facts: tempered prior, Dirichlet strengths, caps, grid)."""

    temperature: float = 0.5
    """Prior is tempered as p**temperature / sum (reference generator: 0.5)."""
    min_strength: float = 0.1
    max_strength: float = 5.0
    n_strengths: int = 15
    """Dirichlet concentration scales: n_strengths log-spaced values in [min, max]."""
    cap_multiplier: float = 15.0
    """Reject a draw if any weight exceeds min(cap_multiplier * untempered prior, 1)."""
    min_weight: float = 2e-4
    """Weights below this are zeroed before renormalising."""
    grid: float = 2e-4
    """Weights are rounded to this grid."""
    oversample: int = 100
    """Draw oversample * n candidates, then dedup and pick n."""
    dedup_l1: float = 1e-5
    """Candidates within this L1 distance of a kept one are dropped."""
    prior: Any = None
    """Override the corpus token prior {domain: share}; None = train-token shares. Typed Any so
    that 'sampler.prior={a: 0.5, b: 0.5}' merges from the command line (see MixtureConfig.weights)."""


@dataclass
class SampleAppConfig:
    """`regmix-sample`: mixtures table + W&B sweep spec for a sweep."""

    data: DataConfig = field(default_factory=DataConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    sweep: str = "default"
    n_mixtures: int = 512
    seed: int = 42
    out_dir: str = "sweeps"
    fixed: List[str] = field(default_factory=list)
    """Fixed `key=value` choices of the train command (e.g. model=1m, train=paper): literal
    items of the W&B command, so every agent run gets them."""
    overwrite: bool = False
    """Replace an existing table of the same name (refused by default: runs may depend on it)."""
    target: Optional[str] = None
    """Domain whose validation loss the W&B sweep reports as its metric (val/<target>/loss);
    None = the corpus's target-role domain when it has exactly one, else no metric."""


@dataclass
class SweepAppConfig:
    """`regmix-sweep`: create the W&B sweep of a sampled sweep."""

    sweep: str = "default"
    """Sweep name: reads <spec_dir>/<sweep>.yaml (and the mixtures table its runs select from)."""
    spec_dir: str = "sweeps"
    """Folder of the spec (regmix-sample's out_dir); the W&B record is written beside it."""
    fixed: List[str] = field(default_factory=list)
    """Fixed `key=value` choices of every run (e.g. model=1m, train=paper, data.dir=...):
    literal items of the agent's command; an item replaces one of the spec's with the same key."""
    entity: Optional[str] = None
    """W&B entity (user or team); None = the spec's tracker.entity item, else the key's default."""
    project: Optional[str] = None
    """W&B project; None = the spec's tracker.project item, else TrackerConfig's default."""
    dry_run: bool = False
    """Check and print the spec and the agent commands; create nothing on W&B."""


def run_name_for(index: Any, name: Any, weights: Any, seed: Any) -> str:
    """Stable folder name of a run; see TrainAppConfig.run_name."""
    if weights:
        plain = OmegaConf.to_container(weights) if OmegaConf.is_config(weights) else dict(weights)
        if name:
            base = str(name)
        else:
            digest = hashlib.sha1(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:8]
            base = f"w-{digest}"
    elif index is not None:
        base = f"mix{int(index):04d}"
    elif name:
        base = str(name)
    else:
        base = "unnamed"
    return base if not seed else f"{base}-s{int(seed)}"


def register_configs() -> None:
    """Register schemas and resolvers with Hydra (idempotent)."""
    from hydra.core.config_store import ConfigStore

    if not OmegaConf.has_resolver("regmix.run_name"):
        OmegaConf.register_new_resolver("regmix.run_name", run_name_for)
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainAppConfig)
    cs.store(name="sample_schema", node=SampleAppConfig)
    cs.store(name="sweep_schema", node=SweepAppConfig)
    cs.store(name="prepare_schema", node=PrepareAppConfig)
    # Group entries are validated through the primary schemas above (no per-group schema
    # entries: they would show up as choices in --help).
