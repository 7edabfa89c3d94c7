"""Third-party output goes to the log file, at the file-descriptor level, and not to the console."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tweet_signals.quiet import third_party_output_to


def test_fd_writes_child_processes_and_warnings_go_to_the_log_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "logs" / "engines.log"  # its folder does not exist yet
    log.parent.mkdir()
    log.write_text("earlier run\n")
    forwarded: list[str] = []
    with third_party_output_to(log, forwarded.append):
        os.write(1, b"raw write to fd 1\n")  # what C code does: no Python stream involved
        os.write(2, b"raw write to fd 2\n")
        # A compiler the library starts inherits the descriptors.
        subprocess.run([sys.executable, "-c", "import os; os.write(2, b'child stderr\\n')"], check=True)
        warnings.warn("a library warning", FutureWarning, stacklevel=1)
    print("after the block", flush=True)
    console = capfd.readouterr()
    written = log.read_text()
    for text in ("raw write to fd 1", "raw write to fd 2", "child stderr", "a library warning"):
        assert text in written
        assert text not in console.out + console.err
    assert "FutureWarning" in written
    assert console.out == "after the block\n"  # the descriptors are back
    # The run log gets this block's output, not what earlier runs left in the file.
    assert len(forwarded) == 1 and "raw write to fd 1" in forwarded[0] and "earlier run" not in forwarded[0]


def test_nothing_written_forwards_nothing_and_an_error_restores_the_console(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "new" / "engines.log"
    forwarded: list[str] = []
    with third_party_output_to(log, forwarded.append):
        pass
    assert forwarded == [] and log.is_file()
    with pytest.raises(RuntimeError), third_party_output_to(log):
        raise RuntimeError("export failed")
    os.write(2, b"console again\n")
    assert capfd.readouterr().err == "console again\n"
