"""Prefect tasks: each is retries, caching and visibility around one library call in ``tweet_signals``."""
