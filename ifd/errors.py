"""Errors that the CLI turns into a one-line reason and a non-zero exit."""

from __future__ import annotations


class IfdError(Exception):
    """A failure a user can act on; the message says what went wrong and what to do."""

    exit_code = 1


class BatchRefused(IfdError):
    """A batch failed validation; nothing of it was written."""

    exit_code = 3

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class ConfigError(IfdError):
    exit_code = 2


class UnknownNameError(IfdError, KeyError):
    """A registry lookup with a name that is not registered."""

    exit_code = 2

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        msg = f"unknown {kind} {name!r}; known: {', '.join(sorted(known))}"
        super().__init__(msg)
        self.args = (msg,)

    def __str__(self) -> str:
        return self.args[0]
