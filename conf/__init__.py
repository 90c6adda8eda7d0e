"""regmix's Hydra configs, shipped inside the package as `regmix.conf` (see pyproject's package-dir).

Hydra finds them as `pkg://regmix.conf`; the `conf/` folder of the directory a command runs in
is searched too (emitted mixtures: `conf/mixture/<name>.yaml`). See `regmix.hydra_conf`.
"""
