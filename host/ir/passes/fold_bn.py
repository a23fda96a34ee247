"""``fold_bn``: fold an inference-mode BatchNorm into the convolution or linear layer that
produces its input, when that layer has no other reader and no activation yet:

    y = γ·(W·x + b − μ)/√(σ² + ε) + β   →   W' = s·W,  b' = s·(b − μ) + β,  s = γ/√(σ² + ε)

(per output channel). A BatchNorm that cannot be folded (after an add, an activation or
a tensor read twice) is refused, naming the node: the engine has no separate scale-and-
shift layer."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from zeroskip.driver.errors import UnsupportedModel
from zeroskip.host.ir.graph import BatchNorm, Conv, Graph, Linear
from zeroskip.host.ir.passes import register


@register("fold_bn")
def fold_bn(graph: Graph) -> Graph:
    for bn in [n for n in graph.nodes if isinstance(n, BatchNorm)]:
        bn = graph.node(bn.name)
        prod = graph.producer(bn.inputs[0])
        if not isinstance(prod, (Conv, Linear)) or prod.act != "none" or getattr(prod, "pool", False) \
                or len(graph.consumers(prod.output)) != 1:
            what = prod.describe() if prod is not None else "the graph input"
            raise UnsupportedModel(f"{bn.describe()}: a BatchNorm must directly follow a convolution or linear "
                                   f"layer that nothing else reads (it follows {what}): fold it by hand or "
                                   "move it before the activation")
        s = np.asarray(bn.gamma, np.float64) / np.sqrt(np.asarray(bn.var, np.float64) + bn.eps)
        if s.shape[0] != prod.weight.shape[0]:
            raise UnsupportedModel(f"{bn.describe()}: {s.shape[0]} channels after {prod.describe()} with "
                                   f"{prod.weight.shape[0]}")
        w = np.asarray(prod.weight, np.float64) * s.reshape((-1,) + (1,) * (prod.weight.ndim - 1))
        b = s * (np.asarray(prod.bias, np.float64) - np.asarray(bn.mean, np.float64)) + np.asarray(bn.beta,
                                                                                                   np.float64)
        graph = graph.replace_node(prod, replace(prod, weight=w, bias=b))
        graph = graph.remove_node(graph.node(bn.name))
    return graph
