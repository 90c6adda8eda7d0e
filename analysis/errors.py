"""The one error type of the analysis: a user error whose message names the bad value and the fix."""

from regmix.errors import RegmixError


class AnalysisError(RegmixError):
    """Input the analysis cannot use (runs, target, constraints, output path).

    `regmix-fit` prints it as one `error: ...` line and exits with status 2, no traceback.
    """
