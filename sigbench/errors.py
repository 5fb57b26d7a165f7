"""Errors a user can cause (the CLI turns them into a message and exit code 2), and interruption."""
from __future__ import annotations


class UsageError(Exception):
    """Bad input: what was wrong, what is allowed, what to run instead."""


class BackendUnavailable(UsageError):
    """A known backend whose framework is not installed."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop after saving what is finished; ``exit_code`` is 128 + the signal."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code
