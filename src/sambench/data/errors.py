"""The error raised for bad input data (unreadable files, shape/spacing mismatches, bad values)."""

from __future__ import annotations

from os import PathLike


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
