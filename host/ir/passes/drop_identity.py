"""``drop_identity``: remove nodes that compute nothing at inference (``nn.Identity``,
``nn.Dropout``); their readers read the node's input instead."""

from __future__ import annotations

from zeroskip.host.ir.graph import Graph, Identity
from zeroskip.host.ir.passes import register


@register("drop_identity")
def drop_identity(graph: Graph) -> Graph:
    for node in list(graph.nodes):
        if isinstance(node, Identity):
            graph = graph.remove_node(graph.node(node.name))
    return graph
