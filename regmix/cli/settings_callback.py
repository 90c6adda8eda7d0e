"""The Hydra callback that checks a command's settings before any work (`regmix.settings_check`).

Configured once in conf/hydra_shared.yaml; each primary config names its table of rules
(`hydra.callbacks.settings.rules: regmix.settings_rules.TRAIN_APP`). It runs on
`on_run_start` / `on_multirun_start`: before Hydra makes the run folder (regmix-train's
.hydra/), before a record, a sweep file or a W&B run exists. In a multirun it also checks
every value a swept key takes (`train.lr=1e-3,2e-3`), so no job starts on a value that would
fail.
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from regmix.settings_check import check, check_value, load_rules


def _checked(step):
    """Run `step`; end the command on any error. Hydra turns an exception in a callback into
    a warning and goes on, so a bad setting (or a bug in the check) must end here."""

    def run(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            step(self, config, **kwargs)
        except Exception as exc:
            from regmix.cli.hydra_app import end_with

            end_with(exc)

    return run


class SettingsCheck(Callback):
    def __init__(self, rules: str) -> None:
        self.rules = rules
        """Dotted path of the command's rule table (module.NAME)."""

    @_checked
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        check(config, load_rules(self.rules))

    @_checked
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        rules = load_rules(self.rules)
        check(config, rules)
        parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
        for override in parsed:
            if override.is_sweep_override() and not override.is_interval_sweep():
                for value in override.sweep_iterator():
                    check_value(override.get_key_element().lstrip("+~"), value, rules)
