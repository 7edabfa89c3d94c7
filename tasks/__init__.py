"""Prefect tasks: retries, visibility and I/O around the pure functions in ``tweet_signals``."""
