"""A sweep of proxy runs, from sampled mixtures to the W&B sweep agents run.

- `files`: where a sweep's files live (`sweeps/<sweep>.mixtures.csv`, `.sampler.json`, `.yaml`, `.wandb.json`);
- `table`: the mixtures table (write, read, validate, one row as a `Mixture`);
- `spec`: the W&B sweep spec (build, validate, write, the argv an agent starts);
- `record`: what regmix-sample recorded about a sweep (settings, prior, corpus, default target);
- `write`: the one writer of a sweep's files (regmix-sample's tables and regmix-propose's rounds);
- `sample`: sampling orchestration behind `regmix-sample` (table + record + spec);
- `check`: what every `wandb agent` host will run, checked before W&B sees it;
- `wandb_sweep`: creating the sweep on W&B, its record, and the agent commands (`regmix-sweep`).

The generator itself is `regmix.sampler`.
"""
