"""Reliability tests: crash safety, faults, hostile input, corrupt data, concurrency (issue 7)."""
