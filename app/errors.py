"""Errors the library raises; the CLI and the UI turn them into a message and exit status."""


class ReportQAError(Exception):
    """Base class: the message says what went wrong and how to fix it."""


class ModelError(ReportQAError):
    """The embedding model cannot be prepared or loaded."""


class CorpusError(ReportQAError):
    """A corpus path or file cannot be read."""


class IndexMissing(ReportQAError):
    """No index where one was expected."""


class IndexMismatch(ReportQAError):
    """The index was built with another model, settings or format, or is damaged."""
