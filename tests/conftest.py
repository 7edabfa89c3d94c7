"""Shared fixtures: offline environment, one Prefect test server per session, a tiny RoBERTa."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

# Never reach the network: the Hugging Face Hub is unreachable here and tests must not try.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# ONNX exports and engine fidelity verdicts go to a per-run cache, not the user's.
os.environ["TWEET_SIGNALS_CACHE"] = tempfile.mkdtemp(prefix="tweet-signals-cache-")
# Runs check no engines in the background (no process outlives a test); the test of the
# background check starts its own and waits for it.
os.environ["TWEET_SIGNALS_ENGINE_CHECKS"] = "off"

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
KIRTI_CSV = SHARED_DATA / "indian-market-tweets-kirti" / "indian_market_tweets.csv"
KIRTI_COLUMNS = (
    "id=permalink,created_at=timestamp,text=content,author_username=username,"
    "like_count=likes,retweet_count=retweets,reply_count=replies"
)
TABORDA_CSV = SHARED_DATA / "taborda-stock-market-tweets-labelled" / "tweets_labelled_09042020_16072020.csv"
X_SAMPLES = SHARED_DATA / "twitter-api-v2-samples" / "twarc-csv-test-data"
CLI = [sys.executable, "-m", "tweet_signals.cli"]  # the command as a newcomer runs it


def synthetic_run(root: Path, *extra: str, posts: int = 1200, chunk_size: int = 200, workers: int = 1) -> list[str]:
    """``tweet-signals run`` of 2026-01-07 on generated posts with the embedded model (fp32), as JSON."""
    return [
        *CLI,
        "run",
        "--date",
        "2026-01-07",
        "--source",
        "synthetic",
        "--synthetic-posts",
        str(posts),
        "--model",
        "embedded",
        "--engine",
        "torch-fp32",
        "--workers",
        str(workers),
        "--chunk-size",
        str(chunk_size),
        "--data-root",
        str(root),
        "--json",
        *extra,
    ]


def newcomer_env(tmp_path: Path) -> dict[str, str]:
    """A subprocess environment with no Prefect server configured, so the CLI starts its own,
    its database in a folder that does not exist yet."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "home" / "prefect")
    return env


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SHARED_DATA.is_dir():
        raise pytest.UsageError(f"tests read the shared datasets by path and expect them at {SHARED_DATA}")
    # The fast tier (-m "not slow") must not start servers: a test that uses one is an integration test.
    unmarked = [
        i.nodeid
        for i in items
        if "prefect_server" in getattr(i, "fixturenames", ()) and not i.get_closest_marker("slow")
    ]
    if unmarked:
        raise pytest.UsageError(f"tests using the Prefect server must be marked slow: {unmarked}")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    """One temporary Prefect API server (SQLite) for every flow test; workers use it too."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        url = PREFECT_API_URL.value()
        os.environ["PREFECT_API_URL"] = url  # spawned pool workers inherit it
        yield url
        os.environ.pop("PREFECT_API_URL", None)


TRAIN_TEXTS = [
    "Nifty breaks out, bullish rally, buying calls",
    "Sensex crashes, bearish, selling everything",
    "Bank Nifty flat today, watching levels",
    "Great gains for $RELIANCE longs",
    "Terrible losses, markets red, panic",
    "What do you think about the market tomorrow?",
    "@user http stocks to buy now",
] * 20


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer RoBERTa with a BPE tokenizer trained here, saved with ``save_pretrained``.

    Random weights: it exercises the real Hugging Face loading and batching code, not accuracy.
    Its labels are spelled like a finance model's (Bearish/Neutral/Bullish) to test normalisation.
    """
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizerFast

    out = tmp_path_factory.mktemp("tiny-roberta")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        TRAIN_TEXTS, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    bpe.save_model(str(out))
    tokenizer = RobertaTokenizerFast(vocab_file=str(out / "vocab.json"), merges_file=str(out / "merges.txt"))
    tokenizer.save_pretrained(str(out))
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=140,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        id2label={0: "Bearish", 1: "Neutral", 2: "Bullish"},
        label2id={"Bearish": 0, "Neutral": 1, "Bullish": 2},
    )
    model = RobertaForSequenceClassification(config).eval()
    model.save_pretrained(str(out), safe_serialization=True)
    return out


# A Parquet write that dies halfway: the streaming writer's first batch is on disk in its
# temporary file when the process is SIGKILLed, as a crash or an OOM kill leaves it.
_WRITER_KILLED_MID_FILE = """
import sys, time, polars as pl
from pathlib import Path
from tweet_signals.storage import ParquetStreamWriter
frame = pl.DataFrame({"id": [str(i) for i in range(10_000)]})
writer = ParquetStreamWriter(Path(sys.argv[1]), frame.to_arrow().schema)
writer.write(frame)
print("written", flush=True)
time.sleep(60)
"""


def kill_a_writer_mid_file(target: Path, env: dict[str, str] | None = None) -> None:
    """A real process that dies (SIGKILL) halfway through a Parquet write to ``target``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER_KILLED_MID_FILE, str(target)],
        cwd=REPO,
        env={**(env or os.environ), "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "written"
    proc.kill()
    proc.wait()


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
