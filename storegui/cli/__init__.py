"""The command line: ``storegui VERB ...`` (no verb opens the app)."""

from .main import main

__all__ = ['main']
