"""Global unstructured L1 magnitude pruning of conv and linear weights.

Workflow::

    prune_global(model, 0.7)      # masks on every Conv2d/Linear weight (biases untouched)
    finetune(model, x, y)         # train with the masks in place: pruned weights stay zero
    finalize(model)               # bake the zeros into .weight, drop the masks

``prune_global`` asks ``torch.nn.utils.prune.global_unstructured`` for an exact count of
weights (``round(sparsity * total)``), so the reached sparsity is the target to within
one weight. The smallest-magnitude weights over *all* layers together are removed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from zeroskip.host.training.train import DEFAULT_BATCH_SIZE, DEFAULT_FINETUNE_EPOCHS, DEFAULT_FINETUNE_LR, DEFAULT_THREADS, train

PRUNABLE = (nn.Conv2d, nn.Linear)


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Conv2d / Linear in ``model``, in registration order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, PRUNABLE)]


def is_pruned(module: nn.Module) -> bool:
    """True while ``module.weight`` is governed by a pruning mask (before ``finalize``)."""
    return hasattr(module, "weight_mask")


def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight the module computes with: ``weight_orig * weight_mask`` while pruned.

    ``module.weight`` itself is only refreshed by the next forward pass, so after an
    optimiser step it can be stale; this is always current. Detached.
    """
    if is_pruned(module):
        return (module.weight_orig * module.weight_mask).detach()
    return module.weight.detach()


def prune_global(model: nn.Module, sparsity: float) -> int:
    """Mask the ``round(sparsity * total)`` smallest-|w| conv/linear weights of ``model``.

    Returns the number of weights pruned. Zeros already in the weights count as
    smallest, so pruning a finalized model again reaches the new overall target. Raises
    if ``model`` still has masks (call ``finalize`` first) or has no conv/linear layer.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    layers = prunable_layers(model)
    if not layers:
        raise ValueError("model has no Conv2d or Linear layer to prune")
    masked = [name for name, m in layers if is_pruned(m)]
    if masked:
        raise ValueError(f"layers {masked} are already pruned; call finalize(model) before pruning again")
    total = sum(m.weight.numel() for _, m in layers)
    count = round(sparsity * total)
    prune.global_unstructured([(m, "weight") for _, m in layers],
                              pruning_method=prune.L1Unstructured, amount=count)
    return count


def finetune(model: nn.Module, x, y, epochs: int = DEFAULT_FINETUNE_EPOCHS, lr: float = DEFAULT_FINETUNE_LR,
             batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0, quiet: bool = False,
             desc: str = "finetune", threads: int | None = DEFAULT_THREADS) -> list[float]:
    """Train a pruned ``model`` with its masks kept (pruned weights stay exactly zero).

    Same arguments and return value as ``train.train``. Raises if ``model`` has no
    pruning masks (prune first, and finetune before ``finalize``).
    """
    if not any(is_pruned(m) for _, m in prunable_layers(model)):
        raise ValueError("model has no pruning masks: call prune_global(model, sparsity) before finetune")
    return train(model, x, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, quiet=quiet, desc=desc,
                 threads=threads)


def finalize(model: nn.Module) -> nn.Module:
    """Make pruning permanent: ``prune.remove`` on every masked weight. Returns ``model``."""
    for _, m in prunable_layers(model):
        if is_pruned(m):
            prune.remove(m, "weight")
    return model


def layer_sparsity(model: nn.Module) -> list[tuple[str, float]]:
    """(name, fraction of zero weights) for every conv/linear layer."""
    out = []
    for name, m in prunable_layers(model):
        w = effective_weight(m)
        out.append((name, float((w == 0).sum()) / w.numel()))
    return out


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of zero weights over all conv/linear weights (biases excluded)."""
    zeros = total = 0
    for _, m in prunable_layers(model):
        w = effective_weight(m)
        zeros += int((w == 0).sum())
        total += w.numel()
    if total == 0:
        raise ValueError("model has no Conv2d or Linear weights")
    return zeros / total
