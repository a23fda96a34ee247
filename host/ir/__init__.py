"""The layer-graph IR (docs/ir.md): typed nodes over named tensors (:mod:`.graph`), float
evaluation (:mod:`.evaluate`) and passes (:mod:`.passes`). Frontends
(:mod:`zeroskip.host.frontends`) translate a user's model into it."""

from zeroskip.host.ir.evaluate import evaluate
from zeroskip.host.ir.graph import (
    Act,
    Add,
    BatchNorm,
    Conv,
    Flatten,
    Graph,
    Identity,
    Linear,
    Node,
    Pad,
    Pool,
    Reduce,
    Tensor,
)
from zeroskip.host.ir.passes import FLOAT_FLOW, PASSES, run_passes

__all__ = ["Act", "Add", "BatchNorm", "Conv", "FLOAT_FLOW", "Flatten", "Graph", "Identity", "Reduce", "Linear",
           "Node", "PASSES", "Pad", "Pool", "Tensor", "evaluate", "run_passes"]
