"""Errors shared by every area."""
from __future__ import annotations


class UserError(Exception):
    """Bad input from a person: the message says what to fix. Nothing was changed."""
