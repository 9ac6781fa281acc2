"""Errors raised for weight files: each message is one line naming the file and the problem."""
from __future__ import annotations

from guide.errors import GuideError


class CheckpointFileError(GuideError):
    """A weight file is missing, truncated, corrupt, tampered with, unsafe or does not fit."""


class MissingCheckpointError(CheckpointFileError):
    """The file (or one file of a pair) does not exist."""


class CorruptCheckpointError(CheckpointFileError):
    """The file exists but cannot be read: empty, truncated, damaged, hash mismatch, unsafe content."""


class IncompatibleGeneratorError(CheckpointFileError):
    """A generator does not fit the checkpoint it is meant to go into (keys, shapes, dtypes, config)."""
