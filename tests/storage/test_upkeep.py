"""What killed writes leave behind is removed, and only that; an unwritable data root is named."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from conftest import kill_a_writer_mid_file

from tweet_signals.faults import StorageFault, storage_cause
from tweet_signals.storage import Storage
from tweet_signals.storage.upkeep import check_data_root, sweep_temporaries

DAY, OTHER = date(2026, 1, 7), date(2026, 1, 8)


@pytest.mark.slow  # real writer subprocesses
def test_a_write_killed_mid_file_leaves_a_temporary_that_the_sweep_removes(tmp_path: Path) -> None:
    storage = Storage.at(tmp_path)
    kill_a_writer_mid_file(Path(storage.raw(DAY)))
    kill_a_writer_mid_file(Path(storage.analyzed_chunk(DAY, "key", 3)))
    kill_a_writer_mid_file(Path(storage.raw(OTHER)))
    left = sorted(p.name for p in tmp_path.rglob(".*.tmp"))
    assert len(left) == 3 and all(name.startswith((".posts.parquet.", ".chunk-0003.parquet.")) for name in left)
    removed = sweep_temporaries(storage, DAY)
    assert len(removed) == 2
    # Only that session's: another session may have a live writer.
    assert [p.parent.name for p in tmp_path.rglob(".*.tmp")] == [f"date={OTHER}"]
    assert not Path(storage.raw(DAY)).exists()  # nothing was published under the real name


def test_object_store_staging_files_of_dead_writers_go_live_ones_stay(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = tmp_path / f"tweet-signals-{int(dead.stdout)}-ab12.tmp"
    live = tmp_path / f"tweet-signals-{os.getpid()}-cd34.tmp"
    unrelated = tmp_path / "tweet-signals-cache.tmp"
    for path in (gone, live, unrelated):
        path.write_bytes(b"partial")
    removed = sweep_temporaries(Storage.at("s3://bucket/root"), DAY, temp_dir=tmp_path)
    assert removed == [str(gone)]
    assert live.exists() and unrelated.exists()


def test_an_unwritable_data_root_is_one_line_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data root's parent should be")
    root = blocker / "data"
    with pytest.raises(StorageFault) as caught:
        check_data_root(Storage.at(root), DAY)
    assert str(caught.value).startswith(f"storage fault under data root {root} during start: ")
    assert "run the same command again" in str(caught.value)
    check_data_root(Storage.at(tmp_path / "fine"), DAY)
    assert not list((tmp_path / "fine").rglob("*probe*"))


def test_an_object_store_refusing_a_write_is_a_storage_fault() -> None:
    """s3fs's own translation of S3's AccessDenied (a PermissionError without an errno) is named a
    refused write with what to check; a missing bucket (a bare FileNotFoundError) is not a fault
    mid-run, where a missing object means a bug or bad input."""
    from botocore.exceptions import ClientError
    from s3fs.errors import translate_boto_error

    def s3_error(code: str) -> Exception:
        return translate_boto_error(ClientError({"Error": {"Code": code, "Message": code}}, "PutObject"))

    refused = storage_cause(s3_error("AccessDenied"))
    assert refused is not None and "refused the write" in refused and "bucket's policy" in refused
    missing = s3_error("NoSuchBucket")
    assert isinstance(missing, FileNotFoundError) and storage_cause(missing) is None
