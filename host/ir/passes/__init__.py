"""Passes over the layer graph: small functions ``graph -> graph``, one a file, registered
by name and run in order by :func:`run_passes` (docs/ir.md, "Passes").

A pass returns a new graph (nodes are frozen) and leaves the one it was given unchanged;
each pass has its own test. :data:`FLOAT_FLOW` is the order every imported model goes
through before quantisation.
"""

from __future__ import annotations

from typing import Callable

from zeroskip.host.ir.graph import Graph

PASSES: dict[str, Callable[[Graph], Graph]] = {}


def register(name: str):
    """Decorator: register a pass under ``name``."""
    def deco(fn: Callable[[Graph], Graph]) -> Callable[[Graph], Graph]:
        if name in PASSES:
            raise ValueError(f"pass {name!r} registered twice")
        PASSES[name] = fn
        return fn
    return deco


def run_passes(graph: Graph, names=None) -> Graph:
    """Run the passes ``names`` (default :data:`FLOAT_FLOW`) in order."""
    for name in FLOAT_FLOW if names is None else names:
        if name not in PASSES:
            raise KeyError(f"no pass {name!r}; passes: {', '.join(sorted(PASSES))}")
        graph = PASSES[name](graph)
    return graph


from zeroskip.host.ir.passes import drop_identity, fold_bn, fuse  # noqa: E402,F401  (register the passes)

FLOAT_FLOW = ("drop_identity", "fold_bn", "fuse_pad", "fuse_activation", "fuse_pool")
