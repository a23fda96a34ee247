"""``fuse_pad``, ``fuse_activation`` and ``fuse_pool``: make activations and the 2×2 max-pool attributes
of the node that produces their input, as the engine applies them inline when a row
completes.

* ``fuse_pad``: zero padding read only by convolutions becomes part of their padding.
* ``fuse_activation``: ReLU / ReLU6 after a convolution, linear layer or add that has no
  activation yet and no other reader becomes that node's ``act``.
* ``fuse_pool``: a 2×2 stride-2 max-pool on a grid after a convolution (with its
  activation) that nothing else reads becomes the convolution's ``pool``. Pools on
  ``sites`` tensors stay nodes (sparse pooling merges sites, a step of its own).
"""

from __future__ import annotations

from dataclasses import replace

from zeroskip.host.ir.graph import Act, Add, Conv, Graph, Linear, Pad, Pool
from zeroskip.host.ir.passes import register


def _sole_producer(graph: Graph, node, kinds):
    prod = graph.producer(node.inputs[0])
    if isinstance(prod, kinds) and len(graph.consumers(prod.output)) == 1 and prod.output not in graph.outputs:
        return prod
    return None


def _merge(graph: Graph, prod, node, **attrs) -> Graph:
    """``prod`` takes ``attrs`` and writes ``node``'s output; ``node`` goes."""
    nodes = []
    for n in graph.nodes:
        if n is node:
            continue
        nodes.append(replace(n, output=node.output, **attrs) if n is prod else n)
    return Graph(graph.inputs, nodes, graph.outputs, graph.name, meta=dict(graph.meta))


@register("fuse_activation")
def fuse_activation(graph: Graph) -> Graph:
    for node in [n for n in graph.nodes if isinstance(n, Act)]:
        node = graph.node(node.name)
        prod = _sole_producer(graph, node, (Conv, Linear, Add))
        if prod is not None and prod.act == "none" and not getattr(prod, "pool", False):
            graph = _merge(graph, prod, node, act=node.kind)
    return graph


@register("fuse_pool")
def fuse_pool(graph: Graph) -> Graph:
    for node in [n for n in graph.nodes if isinstance(n, Pool)]:
        node = graph.node(node.name)
        if node.kind != "max" or node.kernel != (2, 2) or node.stride != (2, 2):
            continue
        if graph.tensors[node.inputs[0]].layout != "grid":
            continue
        prod = _sole_producer(graph, node, (Conv,))
        if prod is not None and not prod.pool:
            graph = _merge(graph, prod, node, pool=True)
    return graph


@register("fuse_pad")
def fuse_pad(graph: Graph) -> Graph:
    for node in [n for n in graph.nodes if isinstance(n, Pad)]:
        node = graph.node(node.name)
        readers = graph.consumers(node.output)
        if not readers or node.output in graph.outputs or not all(isinstance(r, Conv) for r in readers):
            continue
        t, b, left, right = node.pads
        nodes = []
        for n in graph.nodes:
            if n is node:
                continue
            if n in readers:
                pt, pb, pl, pr = n.padding
                n = replace(n, inputs=node.inputs, padding=(pt + t, pb + b, pl + left, pr + right))
            nodes.append(n)
        graph = Graph(graph.inputs, nodes, graph.outputs, graph.name, meta=dict(graph.meta))
    return graph
