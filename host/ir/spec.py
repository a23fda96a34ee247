"""From a float layer graph to the model description today's quantiser takes
(:class:`~zeroskip.host.models.cnn.SpecCNN`): the bridge that lets an imported model —
BatchNorm folded, Dropout dropped, activations and pools fused — go through the existing
quantisation, integer reference and compiler bit-exactly.

It accepts the family the engine runs today: a chain of stride-1 convolutions with square
kernels and symmetric zero padding, each with ReLU and an optional fused 2×2 max-pool,
then a flatten and linear layers with ReLU on all but the last. Anything else is refused
with :class:`~zeroskip.driver.errors.UnsupportedModel` naming the node and the limit.
"""

from __future__ import annotations

import torch
from zeroskip.driver.errors import UnsupportedModel
from zeroskip.host.ir.graph import Conv, Flatten, Graph, Linear
from zeroskip.host.models.cnn import ConvSpec, ModelSpec, SpecCNN


def to_spec_cnn(graph: Graph) -> SpecCNN:
    """The :class:`SpecCNN` computing what ``graph`` (after the float passes) computes."""
    (inp,) = graph.inputs
    if inp.layout != "grid":
        raise UnsupportedModel(f"graph {graph.name}: the input must be an image (C, H, W), gets {inp.shape}")
    convs, fcs, weights = [], [], []
    expect = inp.name
    seen_flatten = False
    nodes = list(graph.nodes)
    for i, n in enumerate(nodes):
        if n.inputs != (expect,):
            raise UnsupportedModel(f"{n.describe()}: only a chain of layers runs today (this node reads "
                                   f"{n.inputs}, the previous layer wrote {expect!r})")
        last = i == len(nodes) - 1
        if isinstance(n, Conv) and not seen_flatten:
            kh, kw = n.kernel
            t, b, left, right = n.padding
            limits = [(n.stride == (1, 1), f"stride {n.stride}"), (kh == kw, f"kernel {kh}x{kw}"),
                      (len({t, b, left, right}) == 1, f"padding {n.padding}"), (n.groups == 1, f"groups {n.groups}"),
                      (n.dilation == (1, 1), f"dilation {n.dilation}"), (n.act == "relu", f"activation {n.act}")]
            bad = [what for ok, what in limits if not ok]
            if bad:
                raise UnsupportedModel(f"{n.describe()}: {', '.join(bad)} not supported yet (stride 1, square kernel, "
                                       "symmetric padding, groups 1, ReLU)")
            convs.append(ConvSpec(n.c_out, kh, t, n.pool))
            weights.append(n)
        elif isinstance(n, Flatten) and not seen_flatten:
            seen_flatten = True
        elif isinstance(n, Linear) and (seen_flatten or not convs):
            want = "none" if last else "relu"
            if n.act != want:
                raise UnsupportedModel(f"{n.describe()}: activation {n.act}; supported: ReLU after hidden linear "
                                       "layers and none after the last")
            if not last:
                fcs.append(n.weight.shape[0])
            weights.append(n)
        else:
            raise UnsupportedModel(f"{n.describe()}: op {n.op} not supported at this place yet (convolutions, "
                                   "a flatten, then linear layers)")
        expect = n.output
    if not weights or not isinstance(weights[-1], Linear):
        raise UnsupportedModel(f"graph {graph.name}: the last layer must be a linear layer (it streams int32 logits)")
    spec = ModelSpec(input_shape=inp.shape, convs=tuple(convs), fcs=tuple(fcs),
                     n_classes=int(weights[-1].weight.shape[0]))
    model = SpecCNN(spec)
    with torch.no_grad():
        for mod, n in zip(model.layers, weights):
            if tuple(mod.weight.shape) != n.weight.shape:
                raise UnsupportedModel(f"{n.describe()}: weight {n.weight.shape} does not match "
                                       f"{tuple(mod.weight.shape)}")
            mod.weight.copy_(torch.as_tensor(n.weight, dtype=mod.weight.dtype))
            mod.bias.copy_(torch.as_tensor(n.bias, dtype=mod.bias.dtype))
    return model.eval()
