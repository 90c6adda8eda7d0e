"""The proxy model: paper shapes, parameter counts, causality, every model config composes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from regmix.config import ModelConfig
from regmix.model import ProxyLM, count_parameters, padded_vocab

CONF = Path(__file__).resolve().parents[1] / "conf"


def load_model_cfg(name: str) -> ModelConfig:
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(CONF / "model" / f"{name}.yaml")))


def meta_model(name: str, vocab: int = 50_277) -> ProxyLM:
    with torch.device("meta"):  # shapes only: the 1b model would need ~5 GB of real memory
        return ProxyLM(load_model_cfg(name), vocab)


def test_1m_has_the_papers_non_embedding_parameter_count():
    counts = count_parameters(meta_model("1m"))
    assert counts["non_embedding"] == pytest.approx(1.31e6, rel=0.005)
    # With the paper's 50,432-id embedding, input + untied output layers add ~25.8M.
    assert padded_vocab(50_432) == 50_432
    assert count_parameters(meta_model("1m", vocab=50_432))["total"] == pytest.approx(27e6, rel=0.05)


@pytest.mark.parametrize(
    "name, layers, width, heads, mlp, non_embedding",
    [("60m", 10, 768, 8, 1536, 59.0e6), ("1b", 22, 2048, 16, 5632, 1.13e9)],
)
def test_paper_shapes(name, layers, width, heads, mlp, non_embedding):
    cfg = load_model_cfg(name)
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_mlp) == (layers, width, heads, mlp)
    assert count_parameters(meta_model(name))["non_embedding"] == pytest.approx(non_embedding, rel=0.01)


@pytest.mark.parametrize("path", sorted((CONF / "model").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_model_config_builds(path):
    cfg = load_model_cfg(path.stem)
    assert cfg.name == path.stem
    model = meta_model(path.stem, vocab=256)
    assert len(model.blocks) == cfg.n_layers


def test_untied_embeddings_and_causal_attention():
    torch.manual_seed(0)
    model = ProxyLM(load_model_cfg("tiny"), 256)
    assert model.embed.weight.data_ptr() != model.lm_head.weight.data_ptr()
    ids = torch.randint(0, 256, (2, 32))
    logits = model(ids)
    assert logits.shape == (2, 32, padded_vocab(256))
    changed = ids.clone()
    changed[:, 20:] = (changed[:, 20:] + 1) % 256  # the future must not change the past
    assert torch.allclose(model(changed)[:, :20], logits[:, :20], atol=1e-5)
    assert not torch.allclose(model(changed)[:, 20:], logits[:, 20:], atol=1e-5)


def test_loss_starts_near_uniform_and_sequences_longer_than_context_are_refused():
    torch.manual_seed(0)
    model = ProxyLM(load_model_cfg("tiny"), 256)
    ids = torch.randint(0, 256, (4, 65))
    loss = model(ids[:, :-1], ids[:, 1:])
    assert loss.item() == pytest.approx(torch.log(torch.tensor(float(padded_vocab(256)))).item(), rel=0.05)
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.zeros(1, model.cfg.max_seq_len + 1, dtype=torch.long))
