"""The errors a user can act on, shared by every stage (the lowest layer: no imports, no side effects).

:class:`OptionError` names the command-line option (``--nsd-tolerance``) a value came from, so the
CLI prints one line a user can act on, and the Python API raises the same error for the same
mistake. :class:`DataError` names the file of bad input data (unreadable files, shape/spacing
mismatches, bad values). Checkpoint problems are :class:`sambench.models.checkpoints.CheckpointError`.
"""

from __future__ import annotations

from os import PathLike


class OptionError(ValueError):
    """A bad option value: ``str(e) == f"{option}: {problem}"`` (``e.option``, ``e.problem``)."""

    def __init__(self, option: str, problem: str) -> None:
        self.option = option
        self.problem = problem
        super().__init__(f"{option}: {problem}")

    def __reduce__(self) -> tuple[type[OptionError], tuple[str, str]]:
        return (type(self), (self.option, self.problem))


class DataError(ValueError):
    """Bad input data; the message names the file and what was expected.

    ``str(e) == f"{path}: {problem}"``; the parts stay available as ``e.path`` and ``e.problem``.
    """

    def __init__(self, path: str | PathLike[str], problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self) -> tuple[type[DataError], tuple[str | PathLike[str], str]]:
        # Keeps the error picklable (e.g. raised inside a multiprocessing worker).
        return (type(self), (self.path, self.problem))
