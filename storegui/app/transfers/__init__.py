"""Transfers: the queue of push, pull, import and export jobs, and its widgets."""
