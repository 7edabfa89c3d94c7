"""``python -m tweet_signals.cli``: the same command as ``tweet-signals``."""

from tweet_signals.cli import main

main()
