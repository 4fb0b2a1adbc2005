"""Command-line stage: the `framework` command and its terminal output."""

from .main import main

__all__ = ["main"]
