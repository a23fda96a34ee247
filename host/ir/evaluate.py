"""Float evaluation of a layer graph (PyTorch, float64): the check that an import
reproduces its source model, before any quantisation.

A ``sites`` tensor is evaluated as its zero-filled map together with its activity mask
(N, 1, H, W): a convolution on it is submanifold (outputs only at active sites), a pool
merges the active sites of each cell (max of the active values; average over the
active sites, not over the window), a flatten returns to a dense vector — the
semantics of the sparse-pixel layers (docs/sparse_pixels.md).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F
from zeroskip.driver.errors import UnsupportedModel
from zeroskip.host.ir.graph import Act, Add, BatchNorm, Conv, Flatten, Graph, Identity, Linear, Pad, Pool, Reduce


def _act(x: torch.Tensor, act: str) -> torch.Tensor:
    if act == "relu":
        return F.relu(x)
    if act == "relu6":
        return x.clamp(0, 6)
    return x


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _raster_keep(active: torch.Tensor, n_max: int) -> torch.Tensor:
    flat = active.reshape(active.shape[0], -1)
    rank = torch.cumsum(flat.to(torch.int64), dim=1)
    return (flat & (rank <= n_max)).reshape(active.shape)


@torch.no_grad()
def evaluate(graph: Graph, x, *, all_tensors: bool = False, with_masks: bool = False):
    """Run ``graph`` on a batch ``x`` (N, *input shape) in float64. Returns the output
    (numpy), or with ``all_tensors`` a dict of every tensor's value (and with ``with_masks``
    also a dict of the activity mask (N, 1, H, W) of every ``sites`` tensor)."""
    (inp,) = graph.inputs
    xt = _t(x)
    if tuple(xt.shape[1:]) != inp.shape:
        raise ValueError(f"input of shape {tuple(xt.shape)}; the graph takes (N, *{inp.shape})")
    vals = {inp.name: xt}
    masks: dict[str, torch.Tensor] = {}
    for node in graph.nodes:
        a = vals[node.inputs[0]]
        mask = masks.get(node.inputs[0])
        if isinstance(node, Conv):
            t, b, left, right = node.padding
            y = F.conv2d(F.pad(a, (left, right, t, b)), _t(node.weight), _t(node.bias), stride=node.stride,
                         dilation=node.dilation, groups=node.groups)
            if mask is not None:
                if y.shape[2:] != mask.shape[2:]:
                    raise UnsupportedModel(f"{node.describe()}: a sparse (submanifold) convolution must keep the "
                                           "map size (odd kernel, padding k//2, stride 1)")
                y = y * mask
            y = _act(y, node.act)
            if node.pool:
                y = F.max_pool2d(y, 2)
                if mask is not None:
                    mask = F.max_pool2d(mask, 2)
        elif isinstance(node, Linear):
            y = _act(a @ _t(node.weight).T + _t(node.bias), node.act)
        elif isinstance(node, Pool):
            if node.kind == "global_avg":
                y, mask = a.mean(dim=(2, 3), keepdim=True), None
            elif mask is not None:  # sparse pooling: merge the active sites of a cell
                count = F.avg_pool2d(mask, node.kernel, node.stride, divisor_override=1)
                new_mask = (count > 0).to(a.dtype)
                if node.kind == "max":
                    pooled = F.max_pool2d(a.masked_fill(mask == 0, -np.inf), node.kernel, node.stride)
                    y = torch.where(new_mask > 0, pooled, torch.zeros((), dtype=a.dtype))
                else:
                    y = F.avg_pool2d(a * mask, node.kernel, node.stride, divisor_override=1) / count.clamp(min=1)
                mask = new_mask
            elif node.kind == "max":
                y = F.max_pool2d(a, node.kernel, node.stride)
            else:
                y = F.avg_pool2d(a, node.kernel, node.stride)
        elif isinstance(node, Act):
            y = _act(a, node.kind)
        elif isinstance(node, Add):
            y = _act(a + vals[node.inputs[1]], node.act)
            m2 = masks.get(node.inputs[1])
            mask = None if mask is None or m2 is None else torch.maximum(mask, m2)
        elif isinstance(node, Flatten):
            y, mask = torch.flatten(a if mask is None else a * mask, 1), None
        elif isinstance(node, BatchNorm):
            shape = (1, -1, 1, 1) if a.ndim == 4 else (1, -1)
            scale = _t(node.gamma) / torch.sqrt(_t(node.var) + node.eps)
            y = (a - _t(node.mean).reshape(shape)) * scale.reshape(shape) + _t(node.beta).reshape(shape)
        elif isinstance(node, Identity):
            y = a
        elif isinstance(node, Pad):
            t, b, left, right = node.pads
            y = F.pad(a, (left, right, t, b))
        elif isinstance(node, Reduce):
            keep = _raster_keep(a[:, 0] > node.threshold, node.n_max)
            mask = keep.unsqueeze(1).to(a.dtype)
            y = a * mask
        else:
            raise UnsupportedModel(f"{node.describe()}: no float evaluation for op {node.op!r}")
        vals[node.output] = y
        if mask is not None and graph.tensors[node.output].layout == "sites":
            masks[node.output] = mask
    if all_tensors:
        out = {k: v.numpy() for k, v in vals.items()}
        return (out, {k: m.numpy() > 0 for k, m in masks.items()}) if with_masks else out
    out = [vals[o].numpy() for o in graph.outputs]
    return out[0] if len(out) == 1 else out
