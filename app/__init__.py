"""reportqa: cited answers from Chinese regional education reports."""

__version__ = "0.1.0"
