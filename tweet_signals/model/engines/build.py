"""Engine construction: which engines exist, and the ``logits_fn`` (padded ids + mask → logits)
of one of them for a loaded model.

The engines themselves live in ``torch_engine`` (fp32, bf16, dynamic int8), ``onnx_engine``
(ONNX Runtime over a cached export), ``cascade`` and ``compiled``; torch is imported only when a
torch engine is built. Which engine ``--engine auto`` runs is decided in ``choice``.
"""

from __future__ import annotations

from tweet_signals.model.base import LogitsFn
from tweet_signals.model.config import AnalyzerConfig
from tweet_signals.model.engines.cascade import CASCADE, CascadeLogits, read_margin
from tweet_signals.model.engines.compiled import COMPILED, compiled_logits
from tweet_signals.model.engines.onnx_engine import cached_onnx, onnx_logits
from tweet_signals.model.parts import ModelParts

ENGINES = ("torch-fp32", "torch-bf16", "torch-int8", "onnx-fp32", "onnx-int8", CASCADE, COMPILED)
REFERENCE = "torch-fp32"


def build_logits_fn(config: AnalyzerConfig, parts: ModelParts, device: str) -> LogitsFn:
    """The ``logits_fn`` of ``config.engine`` (resolved, not ``auto``) on ``device``.

    ``parts.load_module`` gives the fp32 torch classifier, which the ONNX and compiled engines
    only need when their export or library is not cached yet (in ``config.model.cache_dir``);
    ``config.max_length`` bounds the lengths a compiled model accepts."""
    engine, cache = config.engine, config.model.cache_dir
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)} or auto")
    load_module, hf_output, threads = parts.load_module, parts.hf_output, config.threads
    if engine == CASCADE:
        margin = config.cascade_margin if config.cascade_margin is not None else read_margin(cache, device)
        if margin is None:
            raise ValueError(f"{CASCADE} has no calibrated margin for this model yet (resolve_engine calibrates it)")
        fast = onnx_logits(cached_onnx(load_module, hf_output, cache, True), device, threads)
        exact = onnx_logits(cached_onnx(load_module, hf_output, cache, False), device, threads)
        return CascadeLogits(fast, exact, margin)
    if engine == COMPILED:
        return compiled_logits(load_module, hf_output, cache, device, config.max_length)
    if engine.startswith("onnx-"):
        return onnx_logits(cached_onnx(load_module, hf_output, cache, engine == "onnx-int8"), device, threads)
    if engine == "torch-int8" and device != "cpu":
        raise ValueError("torch-int8 runs on the CPU only")
    import torch

    from tweet_signals.model.engines.torch_engine import torch_int8_logits, torch_logits

    if engine == "torch-int8":
        return torch_int8_logits(load_module(), hf_output)
    return torch_logits(load_module(), device, hf_output, torch.bfloat16 if engine == "torch-bf16" else None)
