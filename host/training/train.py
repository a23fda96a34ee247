"""Deterministic training and evaluation of small models on CPU.

``train`` runs Adam with cross-entropy over shuffled mini-batches; the shuffling uses a
private ``torch.Generator`` seeded with ``seed``, so the same model, data and seed give
bit-identical weights on the same machine and thread count. ``set_seed`` seeds the
global generators (torch, numpy, random) for code that uses them, such as
``models.build_model`` without a seed.

The defaults below train TinyCNN on either bundled dataset in a few seconds on two CPU
cores; ``DEFAULT_FINETUNE_*`` are the defaults of ``prune.finetune``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

DEFAULT_EPOCHS = 12
DEFAULT_LR = 1e-2
DEFAULT_BATCH_SIZE = 64
DEFAULT_FINETUNE_EPOCHS = 6
DEFAULT_FINETUNE_LR = 3e-3
EVAL_BATCH_SIZE = 1024
# Intra-op threads for training and inference. These models are tiny: one thread is as
# fast as two here, and it stays fast when test workers share the cores (two workers
# with two spinning OpenMP threads each ran 10x slower). It also makes the float results
# independent of the machine's core count.
DEFAULT_THREADS = 1


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(n)``, restoring the old count after.

    ``None`` leaves the setting alone.
    """
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"thread count must be >= 1 (or None to keep torch's), got {n}")
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def set_seed(seed: int) -> None:
    """Seed torch, numpy's legacy global generator and ``random`` with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def _as_tensors(x, y=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x.float()
    if y is None:
        return xt, None
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64)) if not isinstance(y, torch.Tensor) else y.long()
    if yt.shape != (xt.shape[0],):
        raise ValueError(f"labels have shape {tuple(yt.shape)}, expected ({xt.shape[0]},) to match the images")
    return xt, yt


def train(model: nn.Module, x, y, epochs: int = DEFAULT_EPOCHS, lr: float = DEFAULT_LR,
          batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0, quiet: bool = False,
          desc: str = "train", threads: int | None = DEFAULT_THREADS) -> list[float]:
    """Train ``model`` in place with Adam on (``x``, ``y``); return the mean loss per epoch.

    ``x``: float images (N, C, H, W), numpy or torch; ``y``: int labels (N,). Mini-batch
    order comes from a generator seeded with ``seed``. Shows a tqdm bar unless ``quiet``.
    Runs with ``threads`` torch threads (see :data:`DEFAULT_THREADS`).
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    xt, yt = _as_tensors(x, y)
    n = xt.shape[0]
    if n == 0:
        raise ValueError("cannot train on an empty dataset")
    gen = torch.Generator().manual_seed(int(seed))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    was_training = model.training
    model.train()
    losses: list[float] = []
    bar = tqdm(range(epochs), desc=desc, disable=quiet, unit="epoch", leave=False)
    try:
        with torch_threads(threads):
            for _ in bar:
                order = torch.randperm(n, generator=gen)
                total = 0.0
                for start in range(0, n, batch_size):
                    idx = order[start:start + batch_size]
                    opt.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(model(xt[idx]), yt[idx])
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                losses.append(total / n)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
    finally:
        bar.close()
        model.train(was_training)
    return losses


@torch.no_grad()
def predict(model: nn.Module, x, batch_size: int = EVAL_BATCH_SIZE,
            threads: int | None = DEFAULT_THREADS) -> np.ndarray:
    """Float logits of ``model`` on ``x`` (numpy float32, (N, n_classes)), in eval mode."""
    xt, _ = _as_tensors(x)
    was_training = model.training
    model.eval()
    try:
        with torch_threads(threads):
            out = [model(xt[i:i + batch_size]) for i in range(0, xt.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def evaluate(model: nn.Module, x, y) -> float:
    """Top-1 accuracy of ``model`` on (``x``, ``y``) as a fraction in [0, 1]."""
    _, yt = _as_tensors(x, y)
    if yt.shape[0] == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    return float((predict(model, x).argmax(axis=1) == yt.numpy()).mean())
