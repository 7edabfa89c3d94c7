"""Prefect flows of tweet-signals."""
