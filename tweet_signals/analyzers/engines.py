"""Inference engines: the same model run as torch fp32, bf16 or dynamic int8, or ONNX Runtime.

An engine turns a loaded torch classifier into a ``logits_fn`` (padded ids + mask → logits).
ONNX graphs are exported once from the same model and cached on disk, keyed by the model's
revision and the export options, so every worker process after the first just loads them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from tweet_signals.analyzers.base import LogitsFn

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
        return ["torch-bf16", REFERENCE] if torch.cuda.is_bf16_supported() else [REFERENCE]
    if device == "mps":
        return [REFERENCE]
    return ["onnx-int8", *(["torch-bf16"] if cpu_has_bf16() else []), REFERENCE]


class _LogitsModule(torch.nn.Module):
    """Adapts a Hugging Face classifier (``.logits``) or a plain one to (ids, mask) → logits."""

    def __init__(self, module: torch.nn.Module, hf_output: bool) -> None:
        super().__init__()
        self.module = module
        self.hf_output = hf_output

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.module(input_ids=input_ids, attention_mask=attention_mask)
        return out.logits if self.hf_output else out


class TorchLogits:
    """A torch classifier as a ``logits_fn`` (one batch) and a ``stream`` (many batches).

    On a GPU the stream keeps several batches in flight: inputs go through pinned memory with
    non-blocking copies, logits come back the same way, and the host only waits for a batch
    ``depth`` batches later, so padding the next batch overlaps the model running this one.
    """

    def __init__(self, module: torch.nn.Module, device: str, hf_output: bool, dtype: torch.dtype | None = None):
        wrapped = _LogitsModule(module, hf_output).eval()
        if dtype is not None:
            wrapped = wrapped.to(dtype)  # weights themselves in bf16, not autocast around fp32 weights
        self.module = wrapped.to(device)
        self.device = device

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.device.startswith("cuda"):  # page-locked, so the copy can run asynchronously
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def __call__(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(self._to_device(input_ids), self._to_device(mask)).float().cpu().numpy()

    def stream(self, batches: Iterable[tuple[np.ndarray, np.ndarray]], depth: int = 3) -> Iterator[np.ndarray]:
        """Logits of each batch, in order."""
        if not self.device.startswith("cuda"):
            yield from (self(ids, mask) for ids, mask in batches)
            return
        in_flight: deque[tuple[torch.Tensor, torch.cuda.Event]] = deque()
        with torch.inference_mode():
            for ids, mask in batches:
                logits = self.module(self._to_device(ids), self._to_device(mask)).float()
                host = torch.empty(logits.shape, dtype=torch.float32, pin_memory=True)
                host.copy_(logits, non_blocking=True)
                done = torch.cuda.Event()
                done.record()
                in_flight.append((host, done))
                if len(in_flight) > depth:
                    yield _wait(in_flight.popleft())
            while in_flight:
                yield _wait(in_flight.popleft())


def _wait(item: tuple[torch.Tensor, torch.cuda.Event]) -> np.ndarray:
    host, done = item
    done.synchronize()
    return host.numpy()


def torch_logits(module: torch.nn.Module, device: str, hf_output: bool, dtype: torch.dtype | None = None) -> LogitsFn:
    return TorchLogits(module, device, hf_output, dtype)


def torch_int8_logits(module: torch.nn.Module, hf_output: bool) -> LogitsFn:
    """Dynamic int8 quantisation of every linear layer (CPU only)."""
    quantized = torch.ao.quantization.quantize_dynamic(
        _LogitsModule(module, hf_output).eval(), {torch.nn.Linear}, dtype=torch.qint8
    )
    return torch_logits(quantized, "cpu", hf_output=False)


def onnx_cache_dir(model_dir: Path | None, revision: str) -> Path:
    """Next to the model when its directory is writable, else under the user cache."""
    if model_dir is not None and os.access(model_dir, os.W_OK):
        return model_dir / ".tweet-signals-onnx" / revision
    base = Path(os.environ.get("TWEET_SIGNALS_CACHE", Path.home() / ".cache" / "tweet-signals"))
    return base / "onnx" / revision


def export_onnx(module: torch.nn.Module, hf_output: bool, target: Path, quantize: bool) -> Path:
    """Export (and optionally int8-quantise) once; later calls return the cached file."""

    def cached(quantized: bool) -> Path:
        options = {
            "opset": ONNX_OPSET,
            "quantize": quantized,
            "per_channel": True,
            "torch": torch.__version__.split("+")[0],
        }
        key = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:12]
        return target / f"model-{'int8' if quantized else 'fp32'}-{key}.onnx"

    final, fp32 = cached(quantize), cached(False)
    if final.is_file():
        return final
    target.mkdir(parents=True, exist_ok=True)
    if not fp32.is_file():
        tmp = fp32.with_name(f".{fp32.name}.{os.getpid()}.tmp")
        wrapped = _LogitsModule(module, hf_output).eval().float().cpu()
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
    module: torch.nn.Module,
    device: str,
    hf_output: bool,
    threads: int,
    model_dir: Path | None,
    revision: str,
) -> LogitsFn:
    """The ``logits_fn`` of ``engine`` for an already loaded fp32 torch classifier."""
    builders: dict[str, Callable[[], LogitsFn]] = {
        "torch-fp32": lambda: torch_logits(module, device, hf_output),
        "torch-bf16": lambda: torch_logits(module, device, hf_output, torch.bfloat16),
        "torch-int8": lambda: torch_int8_logits(module, hf_output),
        "onnx-fp32": lambda: onnx_logits(
            export_onnx(module, hf_output, onnx_cache_dir(model_dir, revision), quantize=False), device, threads
        ),
        "onnx-int8": lambda: onnx_logits(
            export_onnx(module, hf_output, onnx_cache_dir(model_dir, revision), quantize=True), device, threads
        ),
    }
    if engine not in builders:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)} or auto")
    if engine == "torch-int8" and device != "cpu":
        raise ValueError("torch-int8 runs on the CPU only")
    return builders[engine]()
