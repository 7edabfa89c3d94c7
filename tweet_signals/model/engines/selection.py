"""Engine selection: which engines exist, which ``--engine auto`` tries on a device, and the
``logits_fn`` (padded ids + mask → logits) of a chosen engine.

The engines themselves live in ``torch_engine`` (fp32, bf16, dynamic int8) and ``onnx_engine``
(ONNX Runtime over a cached export); torch is imported only when a torch engine is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tweet_signals.model.base import LogitsFn
from tweet_signals.model.engines.cascade import CASCADE, CascadeLogits, read_margin
from tweet_signals.model.engines.compiled import COMPILED, compiled_logits
from tweet_signals.model.engines.cpu import cpu_flags
from tweet_signals.model.engines.onnx_engine import cached_onnx, onnx_cache_dir, onnx_logits

if TYPE_CHECKING:
    import torch

ENGINES = ("torch-fp32", "torch-bf16", "torch-int8", "onnx-fp32", "onnx-int8", CASCADE, COMPILED)
REFERENCE = "torch-fp32"


def cpu_has_bf16() -> bool:
    """bf16 matrix units (AVX512-BF16 or AMX) make bf16 weights pay off on a CPU."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def engine_candidates(device: str) -> list[str]:
    """Engines ``--engine auto`` checks against fp32; of those that pass, the fastest on the
    calibration posts wins (fp32, the reference, when none passes).

    On a 2-core AVX512-BF16 CPU (``tweet-signals benchmark``): ONNX int8 is the fastest but may
    disagree; the int8 cascade re-scores int8's unsure posts with fp32; bf16 weights compiled
    ahead of time into fused kernels, then the same eagerly; fp32.
    """
    if device == "cuda":
        import torch

        return ["torch-bf16", REFERENCE] if torch.cuda.is_bf16_supported() else [REFERENCE]
    if device == "mps":
        return [REFERENCE]
    return ["onnx-int8", CASCADE, *([COMPILED, "torch-bf16"] if cpu_has_bf16() else []), REFERENCE]


def make_logits_fn(
    engine: str,
    load_module: Callable[[], torch.nn.Module],
    device: str,
    hf_output: bool,
    threads: int,
    model_dir: Path | None,
    revision: str,
    cascade_margin: float | None = None,
    max_tokens: int = 512,
) -> LogitsFn:
    """The ``logits_fn`` of ``engine``; ``load_module`` gives the fp32 torch classifier, which
    the ONNX engines only need when their export is not cached yet; ``max_tokens`` bounds the
    lengths a compiled model accepts (the analyzer's ``max_length``)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)} or auto")
    if engine == CASCADE:
        cache = onnx_cache_dir(model_dir, revision)
        margin = cascade_margin if cascade_margin is not None else read_margin(cache, device)
        if margin is None:
            raise ValueError(f"{CASCADE} has no calibrated margin for this model yet (resolve_engine calibrates it)")
        fast = onnx_logits(cached_onnx(load_module, hf_output, cache, True), device, threads)
        exact = onnx_logits(cached_onnx(load_module, hf_output, cache, False), device, threads)
        return CascadeLogits(fast, exact, margin)
    if engine == COMPILED:
        return compiled_logits(load_module, hf_output, onnx_cache_dir(model_dir, revision), device, max_tokens)
    if engine.startswith("onnx-"):
        graph = cached_onnx(load_module, hf_output, onnx_cache_dir(model_dir, revision), engine == "onnx-int8")
        return onnx_logits(graph, device, threads)
    if engine == "torch-int8" and device != "cpu":
        raise ValueError("torch-int8 runs on the CPU only")
    import torch

    from tweet_signals.model.engines.torch_engine import torch_int8_logits, torch_logits

    if engine == "torch-int8":
        return torch_int8_logits(load_module(), hf_output)
    return torch_logits(load_module(), device, hf_output, torch.bfloat16 if engine == "torch-bf16" else None)
