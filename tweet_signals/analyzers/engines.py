"""Inference engines: the same model run as torch fp32, bf16 or dynamic int8, or ONNX Runtime.

An engine turns a model into a ``logits_fn`` (padded ids + mask → logits). ONNX graphs are
exported once from the same torch model and cached on disk, keyed by the model's revision and
the export options, so every worker process after the first just loads them, without importing
torch at all (the torch engines live in ``torch_engine``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tweet_signals.analyzers.base import LogitsFn

if TYPE_CHECKING:
    import torch

ENGINES = ("torch-fp32", "torch-bf16", "torch-int8", "onnx-fp32", "onnx-int8")
REFERENCE = "torch-fp32"
ONNX_OPSET = 17


def cpu_has_bf16() -> bool:
    """bf16 matrix units (AVX512-BF16 or AMX) make bf16 weights pay off on a CPU."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def engine_candidates(device: str) -> list[str]:
    """Engines ``--engine auto`` tries, fastest first; the first that agrees with fp32 wins.

    Measured on a 2-core AVX512-BF16 CPU (``tweet-signals benchmark``): ONNX int8 is the fastest
    but may disagree on small models; bf16 weights come next; fp32 is the reference.
    """
    if device == "cuda":
        import torch

        return ["torch-bf16", REFERENCE] if torch.cuda.is_bf16_supported() else [REFERENCE]
    if device == "mps":
        return [REFERENCE]
    return ["onnx-int8", *(["torch-bf16"] if cpu_has_bf16() else []), REFERENCE]


def onnx_cache_dir(model_dir: Path | None, revision: str) -> Path:
    """Next to the model when its directory is writable, else under the user cache."""
    if model_dir is not None and os.access(model_dir, os.W_OK):
        return model_dir / ".tweet-signals-onnx" / revision
    base = Path(os.environ.get("TWEET_SIGNALS_CACHE", Path.home() / ".cache" / "tweet-signals"))
    return base / "onnx" / revision


def onnx_export_path(target: Path, quantized: bool) -> Path:
    """Where the export with these options lives (the options, torch's version included, are
    hashed into the name, so a new exporter never reuses an old graph)."""
    options = {
        "opset": ONNX_OPSET,
        "quantize": quantized,
        "per_channel": True,
        "torch": metadata.version("torch").split("+")[0],
    }
    key = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:12]
    return target / f"model-{'int8' if quantized else 'fp32'}-{key}.onnx"


def cached_onnx(load_module: Callable[[], torch.nn.Module], hf_output: bool, target: Path, quantize: bool) -> Path:
    """The cached export, made first (with torch) when it is missing."""
    path = onnx_export_path(target, quantize)
    if path.is_file():
        return path
    from tweet_signals.analyzers.torch_engine import export_onnx

    return export_onnx(load_module, hf_output, target, quantize)


def onnx_logits(path: Path, device: str, threads: int) -> LogitsFn:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = ["CPUExecutionProvider"]
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(path), options, providers=providers)

    def logits_fn(input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})[0]

    return logits_fn


def make_logits_fn(
    engine: str,
    load_module: Callable[[], torch.nn.Module],
    device: str,
    hf_output: bool,
    threads: int,
    model_dir: Path | None,
    revision: str,
) -> LogitsFn:
    """The ``logits_fn`` of ``engine``; ``load_module`` gives the fp32 torch classifier, which
    the ONNX engines only need when their export is not cached yet."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)} or auto")
    if engine.startswith("onnx-"):
        graph = cached_onnx(load_module, hf_output, onnx_cache_dir(model_dir, revision), engine == "onnx-int8")
        return onnx_logits(graph, device, threads)
    if engine == "torch-int8" and device != "cpu":
        raise ValueError("torch-int8 runs on the CPU only")
    import torch

    from tweet_signals.analyzers.torch_engine import torch_int8_logits, torch_logits

    if engine == "torch-int8":
        return torch_int8_logits(load_module(), hf_output)
    return torch_logits(load_module(), device, hf_output, torch.bfloat16 if engine == "torch-bf16" else None)
