"""Streaming copies: progress, cancel, kernel copies, copy threads, verification."""
