"""Third-party output off the console: compilers, autotuners, quantizers and library warnings.

TorchInductor prints its autotune tables to the process's stderr, the C++ compiler it runs
writes to the inherited file descriptors, ONNX Runtime's quantizer logs on the root logger and
torch raises ``FutureWarning``s. None of it is ours to act on, and it buries the progress lines.
``third_party_output_to`` sends all of it, for the duration of a block, to a log file: at the
file-descriptor level (so C/C++ code and subprocesses are caught too), and the Python
``warnings`` of the block as well. What was written is then handed to ``forward`` (the Prefect
run log at debug level), so the UI keeps it.

Only for blocks where the process prints nothing of its own: every thread's stderr goes to the
file while the block runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def third_party_output_to(log_file: Path, forward: Callable[[str], None] | None = None) -> Iterator[None]:
    """Everything written to stdout/stderr (fd 1 and 2) and every Python warning inside the
    block goes to ``log_file`` (appended); then the text goes to ``forward``, if given."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with log_file.open("ab") as log:
        start = log.tell()
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            with warnings.catch_warnings():
                warnings.simplefilter("default")  # each warning once per place, as Python's default

                def to_log(
                    message: Warning | str,
                    category: type[Warning],
                    filename: str,
                    lineno: int,
                    file: object = None,
                    line: str | None = None,
                ) -> None:
                    text = warnings.formatwarning(message, category, filename, lineno, line)
                    os.write(log.fileno(), text.encode("utf-8", "replace"))

                warnings.showwarning = to_log
                yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
    if forward is not None:
        with log_file.open("rb") as written:
            written.seek(start)
            text = written.read().decode("utf-8", "replace").strip()
        if text:
            forward(text)
