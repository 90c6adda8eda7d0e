"""What a valid setting is, for regmix-train, -sample, -sweep, -prepare (and the demo's parts).

Tables of `regmix.settings_check` rules per config section (keys relative to the section),
mounted at their place in each command's config (`TRAIN_APP`, `SAMPLE_APP`, ...). A primary
config names its command's table (`hydra.callbacks.settings.rules`), and the table is checked
when the config is composed, before any work. The functions that use a setting may still
check it (library callers), but a command's user meets these lines first.
"""

from __future__ import annotations

from regmix.settings_check import Matches, OneOf, Range, Relation, under

#: torch device strings a run accepts; 'auto' picks CUDA when it is visible.
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:\d+)?|xpu(:\d+)?"
DEVICES = "auto, cpu, cuda, cuda:<n> (e.g. cuda:1), mps or xpu"

MODEL = (
    Range("n_layers", 1),
    Range("d_model", 1),
    Range("n_heads", 1),
    Range("d_mlp", 1),
    Range("vocab_size", 1, optional=True, note="; null = the corpus tokenizer's vocabulary"),
    Range("max_seq_len", 1),
    Range("rope_theta", 0, low_open=True),
    Range("norm_eps", 0, low_open=True),
    Range("init_std", 0, low_open=True),
    Relation(("d_model", "n_heads"), lambda d, h: h > 0 and d % h == 0,
             "d_model must be a multiple of n_heads (each head gets d_model / n_heads dimensions)"),
)

TRAIN = (
    Range("tokens", 1),
    Range("batch_size", 1),
    Range("micro_batch_size", 1, optional=True, note="; null = batch_size"),
    Range("seq_len", 1),
    Range("lr", 0, low_open=True),
    Range("warmup_steps", 0),
    OneOf("schedule", ("constant", "cosine")),
    Range("min_lr", 0),
    Range("weight_decay", 0),
    Range("beta1", 0, 1, high_open=True),
    Range("beta2", 0, 1, high_open=True),
    Range("grad_clip", 0, low_open=True, note=" (the largest gradient norm; e.g. 1.0)"),
    Matches("device", DEVICE_PATTERN, DEVICES),
    OneOf("precision", ("auto", "fp32", "bf16"), note=" (fp16 is not supported: bf16 needs no loss scaling)"),
    Range("threads", 0, note="; 0 = torch's default"),
    Range("log_every", 1),
    Range("logits_budget", 0, optional=True, note="; 0 = the plain loss over the full logits, null = per device"),
    Range("checkpoint_every", 0, note="; 0 = no checkpoints"),
    Range("prefetch", 0, note="; 0 = cut each batch inside the step"),
    Relation(("tokens", "batch_size", "seq_len"), lambda t, b, s: b < 1 or s < 1 or t >= b * s,
             "tokens must hold at least one batch (batch_size x seq_len tokens); raise tokens or lower batch_size"),
    Relation(("batch_size", "micro_batch_size"), lambda b, m: m < 1 or b % m == 0,
             "batch_size must be a multiple of micro_batch_size"),
)

EVAL = (
    Range("tokens_per_domain", 1),
    Range("batch_size", 1),
    Range("seq_len", 1, optional=True, note="; null = train.seq_len"),
)

SAMPLER = (
    Range("temperature", 0, low_open=True, note=" (reference: 0.5; 1 = no tempering)"),
    Range("min_strength", 0, low_open=True, note=" (reference: 0.1)"),
    Range("max_strength", 0, low_open=True, note=" (reference: 5)"),
    Range("n_strengths", 1, note=" (reference: 15)"),
    Range("cap_multiplier", 1, note=": below 1 no mixture can meet the caps (reference: 15)"),
    Range("min_weight", 0, 1, high_open=True, note=" (reference: 2e-4)"),
    Range("grid", 0, 0.5, low_open=True, note=" that divides 1, e.g. 2e-4 or 1e-3"),
    Range("oversample", 1, note=" (reference: 100)"),
    Range("dedup_l1", 0, note=" (reference: 1e-5)"),
    Relation(("min_strength", "max_strength"), lambda lo, hi: hi >= lo, "max_strength must be >= min_strength"),
    Relation(("grid",), lambda g: g <= 0 or abs(round(1 / g) * g - 1) <= 1e-9,
             "1/grid must be a whole number; use e.g. 2e-4 or 1e-3"),
)

TOKENIZER = (
    OneOf("kind", ("bytes", "bpe", "file")),
    Range("vocab_size", 257, note=" (a byte-level BPE starts from the 256 bytes)"),
    Range("min_frequency", 1),
    Range("train_chars_per_document", 1),
    Range("train_chars", 1),
)

DATA = (
    OneOf("source", ("synthetic", "text", "pretokenized")),
    OneOf("token_dtype", ("uint16", "uint32"), note=" (the dtype of the .bin files)"),
    Range("seed", 0),
    Range("val_fraction", 0, 1, low_open=True, high_open=True, note=", e.g. 0.05"),
    Range("max_tokens_per_domain", 1, optional=True, note="; null = every token"),
    OneOf("txt_documents", ("file", "blank_line")),
    Range("synthetic.train_scale", 0, low_open=True),
    Range("synthetic.val_tokens", 1, note=" (64k+ for a useful eval slice)"),
    *under("tokenizer", TOKENIZER),
)

MIXTURE = (Range("index", 0, optional=True, note="; a row of the sweep's mixtures table"),)

TRACKER = (OneOf("mode", ("offline", "online", "disabled")),)

TRAIN_APP = (
    *under("model", MODEL),
    *under("train", TRAIN),
    *under("eval", EVAL),
    *under("data", DATA),
    *under("mixture", MIXTURE),
    *under("tracker", TRACKER),
    Range("seed", 0),
    Relation(("train.seq_len", "model.max_seq_len"), lambda s, m: s <= m,
             "train.seq_len must not exceed model.max_seq_len; lower it or pick a model with a longer context"),
    Relation(("eval.seq_len", "model.max_seq_len"), lambda s, m: s <= m,
             "eval.seq_len must not exceed model.max_seq_len; lower it or pick a model with a longer context"),
)

PREPARE_APP = (*under("data", DATA), *under("eval", EVAL))

SAMPLE_APP = (
    *under("data", DATA),
    *under("sampler", SAMPLER),
    Range("n_mixtures", 1, 100_000, note=" (the paper trains 512; several sweeps for more)"),
    Range("seed", 0),
)

#: regmix-sweep has no enum-like or ranged setting (names, folders, flags and fixed items,
#: which `regmix.sweep.check` checks against the spec).
SWEEP_APP: tuple = ()
