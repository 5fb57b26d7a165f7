"""Errors a user can cause: the CLI turns them into a message and exit code 2."""
from __future__ import annotations


class UsageError(Exception):
    """Bad input: what was wrong, what is allowed, what to run instead."""


class BackendUnavailable(UsageError):
    """A known backend whose framework is not installed."""
