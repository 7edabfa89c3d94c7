"""The ONNX Runtime engines: a torch classifier exported once to ONNX (fp32, or int8 by dynamic
quantisation), cached on disk (the model's ``ModelRef.cache_dir``) keyed by the export options, so every
worker after the first loads the graph without importing torch at all.
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

from tweet_signals.model.base import LogitsFn

if TYPE_CHECKING:
    import torch

ONNX_OPSET = 17


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


def export_onnx(load_module: Callable[[], torch.nn.Module], hf_output: bool, target: Path, quantize: bool) -> Path:
    """Export (and optionally int8-quantise) once; later calls return the cached file without
    loading the torch module."""

    import torch

    from tweet_signals.model.engines.torch_engine import LogitsModule

    final, fp32 = onnx_export_path(target, quantize), onnx_export_path(target, False)
    if final.is_file():
        return final
    target.mkdir(parents=True, exist_ok=True)
    if not fp32.is_file():
        tmp = fp32.with_name(f".{fp32.name}.{os.getpid()}.tmp")
        wrapped = LogitsModule(load_module(), hf_output).eval().float().cpu()
        example = (torch.ones((2, 8), dtype=torch.long), torch.ones((2, 8), dtype=torch.long))
        with torch.inference_mode():
            torch.onnx.export(
                wrapped,
                example,
                str(tmp),
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "seq"},
                    "attention_mask": {0: "batch", 1: "seq"},
                    "logits": {0: "batch"},
                },
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
        tmp.replace(fp32)
    if not quantize:
        return fp32
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    # Per-channel weight scales keep int8 close to fp32 on small models like MiniLM.
    quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    tmp.replace(final)
    return final
