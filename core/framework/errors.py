"""The framework's exceptions: a shallow hierarchy, one line each.

A `UserError` is something the user can fix (bad spec, bad data, missing
backend); the CLI prints its message and exits 2. Anything else is ours and
exits 1.
"""

from __future__ import annotations


class FrameworkError(Exception):
    """Base class of every error the framework raises on purpose."""

    exit_code = 1


class UserError(FrameworkError):
    """Something the user can fix; printed without a traceback, exit status 2."""

    exit_code = 2


class SpecError(UserError):
    """The spec file is not valid; carries every problem found, one per line."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class DataError(UserError):
    """The data file cannot be used as the spec says."""


class BackendError(UserError):
    """A backend is unknown, unavailable, misconfigured or failed to sample."""


class OptionsError(BackendError):
    """A backend's options are not valid; carries every problem found."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class CompileError(BackendError):
    """The backend could not compile its model."""


class SamplingError(BackendError):
    """The sampler failed or returned unusable draws."""


class PosteriorContractError(BackendError):
    """A backend returned a posterior that breaks the common format."""


class RunDirectoryError(UserError):
    """A saved run directory is missing or incomplete."""


class DiagnosticsFailed(UserError):
    """`--strict` was given and the convergence checks failed; exit status 3."""

    exit_code = 3


class Interrupted(FrameworkError):
    """The run was interrupted (SIGINT or SIGTERM); exit status 130."""

    exit_code = 130
