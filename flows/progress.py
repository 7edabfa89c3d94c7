"""What a run says to people: the Prefect run log (the UI) and the CLI's progress lines alike."""

from __future__ import annotations

import logging
from typing import Any

# The CLI prints this logger's records (``cli.common.quiet_prefect``), whatever Prefect's log level.
PROGRESS = logging.getLogger("tweet_signals.progress")


def say(logger: Any, message: str, level: int = logging.INFO) -> None:
    """``message`` to the run log and to the CLI's progress lines."""
    logger.log(level, message)
    PROGRESS.log(level, message)


# The stage the run in this process is in: the CLI names it when the Prefect API goes away, since
# the run can then report nothing itself.
_stage = "start"


def enter_stage(logger: Any, run_date: object, stage: str) -> None:
    """Note and say that the run of ``run_date`` starts ``stage``."""
    global _stage
    _stage = stage
    say(logger, f"{run_date}: {stage}")


def current_stage() -> str:
    return _stage
