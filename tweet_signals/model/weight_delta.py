"""Fine-tuned weights stored as their difference from the official encoder, in int8.

A full fine-tune of MiniLM changes every weight matrix a little. Storing the tuned matrices
would commit 90 MB; storing ``tuned - official`` quantised to int8 with one scale per row
commits a quarter of that, and the error it adds is at most half a quantisation step of the
*difference* (about 1/254 of the row's largest change), far below what the tuning moved. Rows
that did not change at all (embedding rows of tokens never seen in training) are left out and
the rows that did are listed, so a frozen or barely touched table costs nothing.

Vectors (biases, LayerNorm weights) and tensors the official encoder lacks (the head) are
stored whole in float32: they are small, and LayerNorm scales are sensitive.

Pure tensor functions, no file I/O: ``embedded`` saves and loads the result as safetensors.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

QUANTISED = ".delta_int8"  # int8 (changed rows, columns): the difference in steps of its row's scale
SCALE = ".delta_scale"  # float32 (changed rows,): one step of each changed row
ROWS = ".delta_rows"  # int64 (changed rows,): which rows changed, when not all of them did


def encode_delta(tuned: Mapping[str, torch.Tensor], official: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What to store of ``tuned``: matrices as int8 row-scaled differences from ``official``
    (unchanged matrices and rows left out), everything else whole."""
    stored: dict[str, torch.Tensor] = {}
    for name, value in tuned.items():
        value = value.detach().float()
        base = official.get(name)
        if base is None or value.dim() != 2:
            stored[name] = value.contiguous().clone()
            continue
        if base.shape != value.shape:
            raise ValueError(f"{name}: tuned shape {tuple(value.shape)} != official {tuple(base.shape)}")
        delta = value - base.float()
        changed = delta.abs().amax(dim=1)
        rows = torch.nonzero(changed > 0).flatten()
        if rows.numel() == 0:
            continue
        scale = changed[rows] / 127.0
        stored[name + QUANTISED] = torch.round(delta[rows] / scale[:, None]).clamp(-127, 127).to(torch.int8)
        stored[name + SCALE] = scale.contiguous()
        if rows.numel() < value.shape[0]:
            stored[name + ROWS] = rows.to(torch.int64).contiguous()
    return stored


def apply_delta(official: Mapping[str, torch.Tensor], stored: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tuned state: ``official`` plus every stored difference, with whole tensors replaced.

    Refuses a stored tensor that names no official weight (other than new whole tensors such as
    the head) or does not fit it, so a file made for another encoder cannot load by accident."""
    state = {name: value.clone() for name, value in official.items()}
    for key, value in stored.items():
        if key.endswith(QUANTISED):
            name = key[: -len(QUANTISED)]
            if name not in state or f"{name}{SCALE}" not in stored:
                raise ValueError(f"{key}: no official weight {name} or no scale for it")
            target = state[name]
            rows = stored.get(name + ROWS)
            delta = value.float() * stored[name + SCALE].float()[:, None]
            picked = rows if rows is not None else torch.arange(target.shape[0])
            if delta.shape != (picked.numel(), target.shape[1]):
                raise ValueError(f"{key}: shape {tuple(value.shape)} does not fit {name} {tuple(target.shape)}")
            state[name] = target.index_add(0, picked, delta.to(target.dtype))
        elif key.endswith((SCALE, ROWS)):
            continue
        else:
            if key in state and state[key].shape != value.shape:
                raise ValueError(f"{key}: shape {tuple(value.shape)} does not fit {tuple(state[key].shape)}")
            state[key] = value.clone()
    return state
