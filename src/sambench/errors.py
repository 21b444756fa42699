"""The error for a bad option value, shared by every stage (no imports, no side effects).

:class:`OptionError` names the command-line option (``--nsd-tolerance``) a value came from, so the
CLI prints one line a user can act on, and the Python API raises the same error for the same
mistake. Data problems are :class:`sambench.data.errors.DataError`; checkpoint problems
:class:`sambench.models.checkpoints.CheckpointError`.
"""

from __future__ import annotations


class OptionError(ValueError):
    """A bad option value: ``str(e) == f"{option}: {problem}"`` (``e.option``, ``e.problem``)."""

    def __init__(self, option: str, problem: str) -> None:
        self.option = option
        self.problem = problem
        super().__init__(f"{option}: {problem}")

    def __reduce__(self) -> tuple[type[OptionError], tuple[str, str]]:
        return (type(self), (self.option, self.problem))
