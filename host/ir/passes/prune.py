"""``prune_global_l1``: one-shot global magnitude pruning of a float graph — the weights
of every convolution and linear layer, ranked together, the smallest ``sparsity``
fraction set to zero (``torch.nn.utils.prune.global_unstructured`` with
``L1Unstructured``, on the graph's numpy weights so ONNX imports prune the same way).

The ranking is by |w| divided by the RMS of the weight's layer (``layer_norm=True``, the
default): raw |w| ranks the weights of a layer with a small scale (a classifier head, a
wide layer) below everything else and can empty it, which no fine-tuning follows here
to repair; ``layer_norm=False`` ranks by raw |w|.

Not in :data:`~zeroskip.host.ir.passes.FLOAT_FLOW` (it takes the sparsity); for a model
that must keep its accuracy, prune while training (:mod:`zeroskip.host.training.prune`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch.nn.utils import prune
from zeroskip.host.ir.graph import Conv, Graph, Linear


class _Holder(torch.nn.Module):
    def __init__(self, w: np.ndarray):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.as_tensor(np.asarray(w, np.float64)), requires_grad=False)


def prune_global_l1(graph: Graph, sparsity: float, *, layer_norm: bool = True) -> Graph:
    """A graph whose conv/linear weights are ``sparsity`` zeros in all (ties at the
    threshold resolved as torch does). Zeros already present count toward the target."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    nodes = [n for n in graph.nodes if isinstance(n, (Conv, Linear))]
    if sparsity == 0.0 or not nodes:
        return graph
    holders = [_Holder(n.weight) for n in nodes]
    scores = None
    if layer_norm:
        scores = {}
        for h in holders:
            w = h.weight.detach().abs()
            rms = float(torch.sqrt((w * w).mean()))
            scores[(h, "weight")] = w / rms if rms > 0 else w
    prune.global_unstructured([(h, "weight") for h in holders], pruning_method=prune.L1Unstructured,
                              importance_scores=scores, amount=float(sparsity))
    out = graph
    for n, h in zip(nodes, holders):
        w = (h.weight_orig * h.weight_mask).detach().numpy()
        out = out.replace_node(out.node(n.name), replace(n, weight=w))
    return out
