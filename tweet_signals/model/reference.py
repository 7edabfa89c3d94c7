"""One model reference: the ``--model`` string resolved once into a ``ModelRef``.

A model is named three ways: ``embedded`` (the bundled offline model, or a directory written by
``train-model --output DIR`` that holds only its adapter), a local Hugging Face model directory,
or a Hugging Face Hub id. ``resolve_model`` is the one place that tells them apart; every later
step (availability check, revision, caches, loading, engines, workers) takes the ``ModelRef``.

Torch-free and cheap (stats and one small adapter hash), so the flow, the CLI and every worker
can afford it; the value is small and pickles to process-pool and Dask workers.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tweet_signals.model.base import ModelUnavailableError

DEFAULT_MODEL = "cardiffnlp/twitter-roberta-base-sentiment-latest"
EMBEDDED = "embedded"

ModelKind = Literal["embedded", "local", "hub"]


@dataclass(frozen=True)
class ModelRef:
    """A resolved ``--model``: what it is, where its files are, which weights, where its derived
    files (ONNX exports, compiled libraries, engine verdicts) are cached."""

    name: str  # as the user gave it: recorded in manifests and in the chunk cache keys
    kind: ModelKind
    # embedded: the adapter file; local: the model directory; hub: None.
    path: Path | None
    revision: str  # a short fingerprint of the weights: a changed model never reuses old outputs
    cache_dir: Path

    @property
    def model_dir(self) -> Path | None:
        """The user's model directory (local models and trained adapters), None otherwise."""
        if self.kind == "local":
            return self.path
        return self.path.parent if self.kind == "embedded" and self.name != EMBEDDED and self.path else None


def resolve_model(model: str) -> ModelRef:
    """The one reading of a ``--model`` value (see the module docstring)."""
    from tweet_signals.model.embedded_files import ADAPTER_NAME, ADAPTER_PATH, BASE_SHA256

    path = Path(model)
    # A directory written by ``train-model --output DIR``: the adapter, no Hugging Face config.
    trained = path.is_dir() and (path / ADAPTER_NAME).is_file() and not (path / "config.json").is_file()
    if model == EMBEDDED or trained:
        adapter = ADAPTER_PATH if model == EMBEDDED else path / ADAPTER_NAME
        revision = _embedded_revision(adapter, BASE_SHA256)
        return ModelRef(model, "embedded", adapter, revision, _cache_dir(None if model == EMBEDDED else path, revision))
    if path.is_dir():
        revision = _directory_revision(path)
        return ModelRef(model, "local", path, revision, _cache_dir(path, revision))
    # A hub id: transformers' cache resolves the Hub revision; the name keys our own caches.
    revision = "hub-" + hashlib.sha256(model.encode()).hexdigest()[:12]
    return ModelRef(model, "hub", None, revision, _cache_dir(None, revision))


def _embedded_revision(adapter: Path, base_sha256: str) -> str:
    """The encoder's and the fine-tune's hashes, plus how the file says its texts are prepared
    where that depends on this Python (see ``base.preparation_key``)."""
    from safetensors import SafetensorError

    from tweet_signals.hashing import sha256_file
    from tweet_signals.model.base import preparation_key
    from tweet_signals.model.embedded_files import read_adapter_metadata

    if not adapter.is_file():
        return "missing"
    try:
        preparation = preparation_key(read_adapter_metadata(adapter))
    except (SafetensorError, OSError, ValueError):
        preparation = ""  # an unreadable file: loading it fails with its own message
    return hashlib.sha256((base_sha256 + sha256_file(adapter) + preparation).encode()).hexdigest()[:16]


def _directory_revision(directory: Path) -> str:
    """Names, sizes and modification times of the weight and config files (not their bytes:
    hashing a 500 MB model would cost every run seconds)."""
    digest = hashlib.sha256()
    for f in sorted(directory.glob("*")):
        if f.is_file() and f.suffix in {".json", ".safetensors", ".txt", ".model"}:
            st = f.stat()
            digest.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _cache_dir(model_dir: Path | None, revision: str) -> Path:
    """Next to the model when its directory is writable, else under the user cache."""
    if model_dir is not None and os.access(model_dir, os.W_OK):
        return model_dir / ".tweet-signals-onnx" / revision
    base = Path(os.environ.get("TWEET_SIGNALS_CACHE", Path.home() / ".cache" / "tweet-signals"))
    return base / "onnx" / revision


def offline() -> bool:
    """Whether the Hugging Face Hub must not be asked (``HF_HUB_OFFLINE``)."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}


# How long the connection attempt to the Hub may take before it counts as unreachable, and how
# long an unreachable verdict holds in a process before the next run asks again.
HUB_PROBE_SECONDS = 3.0
UNREACHABLE_HOLDS_S = 300.0
_hub_verdict: tuple[float, bool] | None = None  # (monotonic time, unreachable)


def hub_unreachable() -> bool:
    """Whether the Hub's endpoint (or the proxy that reaches it) takes no TCP connection.

    huggingface_hub retries a failed request five times with backoff (about 25 s, two WARNING
    lines each) before transformers gives up; a machine without the Hub, or one whose cache
    already holds the model, must not pay that on every run and worker. One attempt on the first
    address the name resolves to; a reachable Hub is remembered for the process, an unreachable
    one for ``UNREACHABLE_HOLDS_S``."""
    global _hub_verdict
    if _hub_verdict is not None and (not _hub_verdict[1] or time.monotonic() - _hub_verdict[0] < UNREACHABLE_HOLDS_S):
        return _hub_verdict[1]
    _hub_verdict = (time.monotonic(), not _connects(*_hub_address()))
    return _hub_verdict[1]


def _hub_address() -> tuple[str, int]:
    """Host and port a request to the Hub connects to: its proxy when one applies."""
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    from huggingface_hub import constants

    endpoint = urlsplit(constants.ENDPOINT)
    host, port = endpoint.hostname or "", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    proxy = getproxies().get(endpoint.scheme)
    if proxy and not proxy_bypass(host):
        via = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return via.hostname or "", via.port or (443 if via.scheme == "https" else 80)
    return host, port


def _connects(host: str, port: int) -> bool:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(HUB_PROBE_SECONDS)
            sock.connect(address)
        return True
    except OSError:
        return False


def cache_only(ref: ModelRef) -> bool:
    """Whether a model is read from local files only: a local directory, ``HF_HUB_OFFLINE``, or
    a Hub that cannot be reached (its cached copy, if any, is then used without asking)."""
    return ref.kind != "hub" or offline() or hub_unreachable()


def check_model_available(ref: ModelRef) -> None:
    """Fail early, before anything is written, with one paragraph saying what to do."""
    if ref.kind == "embedded":
        from tweet_signals.model.embedded_files import base_model_dir, verify_base_weights

        verify_base_weights(base_model_dir() / "model.safetensors")
        if ref.path is None or not ref.path.is_file():
            raise ModelUnavailableError(f"The embedded model's adapter is missing ({ref.path}).")
        return
    if ref.kind == "local":
        assert ref.path is not None
        if not (ref.path / "config.json").is_file() or not list(ref.path.glob("*.safetensors")):
            raise ModelUnavailableError(
                f"{ref.path} is not a Hugging Face model directory with safetensors weights "
                "(config.json and *.safetensors are required; pickled .bin weights are refused)."
            )
        return
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(ref.name, local_files_only=cache_only(ref), trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(unavailable_message(ref.name)) from exc


def unavailable_message(model: str) -> str:
    return (
        f"The sentiment model {model!r} could not be loaded: it is not a local directory and "
        "it is not in the Hugging Face cache, and the Hub could not be reached (or HF_HUB_OFFLINE "
        "is set). Either run with `--model embedded` (the offline model bundled with tweet-signals), "
        "or point `--model` at a local model directory (for example one saved with "
        "`save_pretrained`, or copied from a machine that has it), or download it once on a "
        f"connected machine with `huggingface-cli download {model}` and copy the cache "
        "(~/.cache/huggingface) here. Nothing was written for this run."
    )
