"""``AnalyzerConfig``: which model, which engine on which device, and the batch shapes."""

from __future__ import annotations

from dataclasses import dataclass

from tweet_signals.model.reference import ModelRef


@dataclass(frozen=True)
class AnalyzerConfig:
    """Everything that decides an analyzer's outputs, plus how to run it. Small and picklable:
    it travels to every pool and Dask worker inside each chunk descriptor."""

    model: ModelRef
    device: str = "auto"  # auto | cpu | cuda | mps
    engine: str = "auto"  # auto or one of engines.build.ENGINES
    max_length: int = 128
    batch_tokens: int = 0  # padded tokens per batch; 0: the device's default (BATCH_SHAPES)
    max_batch_size: int = 0  # 0: the device's default
    threads: int = 0  # torch intra-op threads; 0: leave torch's default
    # The int8 cascade's margin, set by ``engines.choice.resolve_engine`` so that workers on any
    # machine (Dask) use the one the run calibrated; None: the one stored beside the ONNX exports.
    cascade_margin: float | None = None

    def output_fields(self) -> dict[str, object]:
        """The fields that change the numbers a model produces (part of chunk cache keys)."""
        fields: dict[str, object] = {
            "model": self.model.name,
            "revision": self.model.revision,
            "max_length": self.max_length,
            "engine": self.engine,
        }
        if self.cascade_margin is not None:
            fields["cascade_margin"] = self.cascade_margin
        return fields


# (token budget, most rows) per batch. CPU: batches of 32 beat 64 and 128 (cache-sized
# matrices); a CUDA GPU needs ~1024 rows of tweets to fill its matrix units (measured on an
# H200); the MPS shape is a middle guess, not measured.
BATCH_SHAPES: dict[str, tuple[int, int]] = {"cpu": (4096, 32), "mps": (8192, 64), "cuda": (65536, 1024)}


def batch_shape(config: AnalyzerConfig, device: str) -> tuple[int, int]:
    tokens, rows = BATCH_SHAPES.get(device.split(":")[0], BATCH_SHAPES["cpu"])
    return config.batch_tokens or tokens, config.max_batch_size or rows


def resolve_device(device: str, engine: str = "") -> str:
    if device != "auto":
        return device
    if engine.startswith("onnx-"):  # ask ONNX Runtime, so an ONNX worker never imports torch
        import onnxruntime

        return "cuda" if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
