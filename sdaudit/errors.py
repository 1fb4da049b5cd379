"""Errors that sdaudit's faces show to a user as one line.

Every error here is a ``ValueError``: it means the input (an argument, a file, a model id)
is wrong or unusable, and the CLI and pages print its message instead of a traceback.
"""


class SdauditError(ValueError):
    """An input sdaudit cannot use; the message says what is wrong and what was given."""


class StoreError(SdauditError):
    """The store file cannot be opened or used (locked, not DuckDB, written by a newer sdaudit)."""


class ModelLoadError(SdauditError):
    """A model id or folder that cannot be loaded as a text-to-image pipeline. ``detail`` keeps the
    underlying library's own text for a "details" view; the message alone is what people read."""

    def __init__(self, message: str, *, detail: str = ""):
        super().__init__(message)
        self.detail = detail


class RunFolderError(SdauditError):
    """A run folder that is missing, incomplete or inconsistent."""
