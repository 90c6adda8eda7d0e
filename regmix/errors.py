"""The base of every error a user can fix (bad settings, missing or damaged files, bad input).

Entry points turn a `RegmixError` into one `error: ...` line (exit 2); anything else is a bug and
keeps its traceback. It subclasses `ValueError` so that callers written against the older
per-module errors (all `ValueError`s) keep working.
"""


class RegmixError(ValueError):
    """Input regmix cannot use; the message names the bad value and the fix."""


class SettingsError(RegmixError):
    """A setting that is misspelled or out of range, found when the config is composed."""
