"""`regmix-prepare`: build a corpus folder; see `regmix.corpus.prepare.prepare_corpus`.

    regmix-prepare                                   # the embedded synthetic corpus -> data/synthetic
    regmix-prepare data=text '+data.paths.code=[src/]' '+data.paths.prose=[books/*.txt]' data.tokenizer.kind=bpe
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from regmix.cli.hydra_app import hydra_main
from regmix.config import register_configs
from regmix.corpus.config import PrepareAppConfig

register_configs()


@hydra_main("prepare", folders=("data.dir",))
def main(cfg: DictConfig) -> None:
    from regmix.corpus.prepare import format_domain_table, prepare_corpus

    app: PrepareAppConfig = OmegaConf.to_object(cfg)
    meta = prepare_corpus(app.data)
    print(f"corpus {meta.name!r} (content {meta.content_hash}, tokenizer {meta.tokenizer['kind']} "
          f"{meta.tokenizer['id']}, vocab {meta.vocab_size}) in {Path(app.data.dir).resolve()}")
    print(format_domain_table(meta, eval_tokens=app.eval.tokens_per_domain))


if __name__ == "__main__":
    main()
