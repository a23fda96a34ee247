"""The layer graph: typed nodes over named tensors (docs/ir.md).

A :class:`Graph` is a topologically ordered list of nodes. Each node reads tensors by
name (``inputs``) and writes one (``output``); a tensor may have several readers (a
residual block reads its input twice), so the graph is a DAG, not a chain. Tensors carry
their shape without the batch dimension and a layout:

* ``grid``  — a (C, H, W) feature map;
* ``sites`` — a (C, H, W) map of which only the active sites (sparse-pixel mode) hold
  values, the rest being zero; a conv or pool on a ``sites`` tensor is the sparse
  (submanifold) version of the op;
* ``flat``  — an (N,) vector, the input and output of fully connected layers.

Nodes are frozen dataclasses: a pass builds new nodes (``dataclasses.replace``) and a new
graph instead of editing in place. Float graphs hold float64 weights; quantisation turns
them into int8 graphs. Shapes are inferred here, once; what the engine can run is checked
by the lowering, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
from zeroskip.driver.errors import UnsupportedModel

LAYOUTS = ("grid", "sites", "flat")
ACTIVATIONS = ("none", "relu", "relu6")


@dataclass(frozen=True)
class Tensor:
    """A named tensor: ``shape`` without the batch dimension, ``layout`` one of
    :data:`LAYOUTS`, ``scale`` the real value of one int8 step once quantised."""

    name: str
    shape: tuple
    layout: str = "grid"
    scale: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.layout not in LAYOUTS:
            raise ValueError(f"tensor {self.name}: layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.layout == "flat" and len(self.shape) != 1 or self.layout != "flat" and len(self.shape) != 3:
            raise ValueError(f"tensor {self.name}: a {self.layout} tensor has shape {self.shape}")


@dataclass(frozen=True, eq=False)
class Node:
    """Base class: a node reads ``inputs`` and writes ``output`` (tensor names)."""

    name: str
    inputs: tuple
    output: str
    op: ClassVar[str] = "node"

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))

    def out_tensor(self, ins: list[Tensor]) -> Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} ({self.op})"


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _check_act(node: Node, act: str) -> None:
    if act not in ACTIVATIONS:
        raise ValueError(f"{node.describe()}: activation must be one of {ACTIVATIONS}, got {act!r}")


@dataclass(frozen=True, eq=False)
class Conv(Node):
    """2-D convolution. ``weight`` (C_out, C_in/groups, K_h, K_w), ``bias`` (C_out,);
    ``stride`` (s_h, s_w); ``padding`` (top, bottom, left, right) zeros; ``groups`` 1 or
    C_in (depthwise); ``act`` applied after; ``pool`` a fused 2×2 max-pool after ``act``."""

    weight: np.ndarray = None
    bias: np.ndarray = None
    stride: tuple = (1, 1)
    padding: tuple = (0, 0, 0, 0)
    groups: int = 1
    dilation: tuple = (1, 1)
    act: str = "none"
    pool: bool = False
    op: ClassVar[str] = "conv"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "stride", _pair(self.stride))
        object.__setattr__(self, "dilation", _pair(self.dilation))
        pad = tuple(int(p) for p in (self.padding if len(self.padding) == 4 else
                                     (self.padding[0], self.padding[0], self.padding[1], self.padding[1])))
        object.__setattr__(self, "padding", pad)
        if self.weight is None or np.ndim(self.weight) != 4:
            raise ValueError(f"{self.describe()}: weight must be (C_out, C_in/groups, K_h, K_w)")
        if self.bias is None:
            object.__setattr__(self, "bias", np.zeros(self.weight.shape[0]))
        _check_act(self, self.act)

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])

    @property
    def c_out(self) -> int:
        return int(self.weight.shape[0])

    def out_tensor(self, ins: list[Tensor]) -> Tensor:
        (x,) = ins
        if x.layout == "flat":
            raise UnsupportedModel(f"{self.describe()}: a convolution needs a (C, H, W) input, gets {x.shape}")
        c, h, w = x.shape
        if c != self.weight.shape[1] * self.groups:
            raise UnsupportedModel(f"{self.describe()}: expects {self.weight.shape[1] * self.groups} input "
                                   f"channels, gets {c}")
        kh, kw = self.kernel
        dh, dw = self.dilation
        t, b, left, right = self.padding
        ho = (h + t + b - dh * (kh - 1) - 1) // self.stride[0] + 1
        wo = (w + left + right - dw * (kw - 1) - 1) // self.stride[1] + 1
        if ho < 1 or wo < 1:
            raise UnsupportedModel(f"{self.describe()}: kernel {kh}x{kw} does not fit the padded {h}x{w} input")
        if self.pool:
            ho, wo = ho // 2, wo // 2
        return Tensor(self.output, (self.c_out, ho, wo), x.layout)


@dataclass(frozen=True, eq=False)
class Linear(Node):
    """Fully connected: ``weight`` (N_out, N_in), ``bias`` (N_out,), then ``act``."""

    weight: np.ndarray = None
    bias: np.ndarray = None
    act: str = "none"
    op: ClassVar[str] = "linear"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weight is None or np.ndim(self.weight) != 2:
            raise ValueError(f"{self.describe()}: weight must be (N_out, N_in)")
        if self.bias is None:
            object.__setattr__(self, "bias", np.zeros(self.weight.shape[0]))
        _check_act(self, self.act)

    def out_tensor(self, ins: list[Tensor]) -> Tensor:
        (x,) = ins
        if x.layout != "flat":
            raise UnsupportedModel(f"{self.describe()}: a linear layer needs a flat input, gets a {x.layout} "
                                   f"{x.shape} tensor: flatten it first")
        if x.shape[0] != self.weight.shape[1]:
            raise UnsupportedModel(f"{self.describe()}: expects {self.weight.shape[1]} inputs, gets {x.shape[0]}")
        return Tensor(self.output, (self.weight.shape[0],), "flat")


POOL_KINDS = ("max", "avg", "global_avg")


@dataclass(frozen=True, eq=False)
class Pool(Node):
    """Pooling: ``kind`` max / avg over ``kernel`` windows at ``stride`` (floor), or
    ``global_avg`` over the whole map (output (C, 1, 1))."""

    kind: str = "max"
    kernel: tuple = (2, 2)
    stride: tuple = (2, 2)
    op: ClassVar[str] = "pool"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in POOL_KINDS:
            raise ValueError(f"{self.describe()}: pool kind must be one of {POOL_KINDS}, got {self.kind!r}")
        object.__setattr__(self, "kernel", _pair(self.kernel))
        object.__setattr__(self, "stride", _pair(self.stride))

    def out_tensor(self, ins: list[Tensor]) -> Tensor:
        (x,) = ins
        if x.layout == "flat":
            raise UnsupportedModel(f"{self.describe()}: pooling needs a (C, H, W) input, gets {x.shape}")
        c, h, w = x.shape
        if self.kind == "global_avg":
            return Tensor(self.output, (c, 1, 1), "grid")
        ho = (h - self.kernel[0]) // self.stride[0] + 1
        wo = (w - self.kernel[1]) // self.stride[1] + 1
        if ho < 1 or wo < 1:
            raise UnsupportedModel(f"{self.describe()}: a {self.kernel} pool does not fit a {h}x{w} map")
        return Tensor(self.output, (c, ho, wo), x.layout)


@dataclass(frozen=True, eq=False)
class Act(Node):
    """A standalone activation (``relu``, ``relu6``); fused into its producer by a pass."""

    kind: str = "relu"
    op: ClassVar[str] = "act"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in ACTIVATIONS[1:]:
            raise ValueError(f"{self.describe()}: activation must be relu or relu6, got {self.kind!r}")

    def out_tensor(self, ins: list[Tensor]) -> Tensor:
        return replace(ins[0], name=self.output, scale=None)


@dataclass(frozen=True, eq=False)
class Add(Node):
    """Element-wise sum of two tensors of one shape, then ``act``."""

    act: str = "none"
    op: ClassVar[str] = "add"

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.inputs) != 2:
            raise ValueError(f"{self.describe()}: an add reads two tensors, got {self.inputs}")
        _check_act(self, self.act)

    def out_tensor(self, ins: list[Tensor]) -> Tensor:
        a, b = ins
        if a.shape != b.shape:
            raise UnsupportedModel(f"{self.describe()}: adds tensors of shapes {a.shape} and {b.shape}")
        return Tensor(self.output, a.shape, a.layout if a.layout == b.layout else "grid")


@dataclass(frozen=True, eq=False)
class Flatten(Node):
    """(C, H, W) → (C·H·W,) in (C, H, W) order, as ``torch.flatten(x, 1)``; a ``sites``
    tensor becomes dense again (sparse flatten)."""

    op: ClassVar[str] = "flatten"

    def out_tensor(self, ins: list[Tensor]) -> Tensor:
        (x,) = ins
        return Tensor(self.output, (int(np.prod(x.shape)),), "flat")


@dataclass(frozen=True, eq=False)
class BatchNorm(Node):
    """Inference-mode batch normalisation (float graphs only): folded away by ``fold_bn``."""

    gamma: np.ndarray = None
    beta: np.ndarray = None
    mean: np.ndarray = None
    var: np.ndarray = None
    eps: float = 1e-5
    op: ClassVar[str] = "batchnorm"

    def out_tensor(self, ins: list[Tensor]) -> Tensor:
        return replace(ins[0], name=self.output, scale=None)


@dataclass(frozen=True, eq=False)
class Pad(Node):
    """Zero padding of a (C, H, W) map by ``pads`` (top, bottom, left, right)
    (``nn.ZeroPad2d``, ``F.pad``): merged into the convolution that reads it by a pass."""

    pads: tuple = (0, 0, 0, 0)
    op: ClassVar[str] = "pad"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "pads", tuple(int(p) for p in self.pads))
        if len(self.pads) != 4 or min(self.pads) < 0:
            raise UnsupportedModel(f"{self.describe()}: zero padding must be four non-negative sizes, got {self.pads}")

    def out_tensor(self, ins: list[Tensor]) -> Tensor:
        (x,) = ins
        if x.layout != "grid":
            raise UnsupportedModel(f"{self.describe()}: padding needs a dense (C, H, W) map, gets {x.layout} {x.shape}")
        c, h, w = x.shape
        t, b, left, right = self.pads
        return Tensor(self.output, (c, h + t + b, w + left + right), "grid")


@dataclass(frozen=True, eq=False)
class Identity(Node):
    """No computation (``nn.Identity``, ``nn.Dropout`` at inference): dropped by a pass."""

    op: ClassVar[str] = "identity"

    def out_tensor(self, ins: list[Tensor]) -> Tensor:
        return replace(ins[0], name=self.output)


@dataclass(frozen=True, eq=False)
class Reduce(Node):
    """Sparse-pixel input reduce: a pixel is active when its channel 0 exceeds
    ``threshold`` (float units); the first ``n_max`` active pixels in raster order are
    kept, every other pixel is zeroed. Output layout ``sites``."""

    threshold: float = 0.0
    n_max: int = 1
    op: ClassVar[str] = "reduce"

    def out_tensor(self, ins: list[Tensor]) -> Tensor:
        (x,) = ins
        if x.layout == "flat":
            raise UnsupportedModel(f"{self.describe()}: the input reduce needs a (C, H, W) image")
        return Tensor(self.output, x.shape, "sites")


@dataclass(eq=False)
class Graph:
    """Input tensors, nodes in topological order, output tensor names; ``tensors`` maps
    every tensor name to its :class:`Tensor` (inferred)."""

    inputs: list
    nodes: list
    outputs: list
    name: str = "model"
    tensors: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.infer()

    # -- structure -------------------------------------------------------------------
    def infer(self) -> Graph:
        """Check the order and the names, and infer every tensor's shape and layout."""
        tensors = {t.name: t for t in self.inputs}
        seen = set()
        for node in self.nodes:
            if node.name in seen:
                raise ValueError(f"two nodes are named {node.name!r}")
            seen.add(node.name)
            missing = [i for i in node.inputs if i not in tensors]
            if missing:
                raise ValueError(f"{node.describe()} reads {missing} before anything writes it")
            if node.output in tensors:
                raise ValueError(f"{node.describe()} writes {node.output!r}, which exists already")
            tensors[node.output] = node.out_tensor([tensors[i] for i in node.inputs])
        for o in self.outputs:
            if o not in tensors:
                raise ValueError(f"graph output {o!r} is not a tensor of the graph")
        self.tensors = tensors
        return self

    def producer(self, tensor: str) -> Node | None:
        return next((n for n in self.nodes if n.output == tensor), None)

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def replace_node(self, old: Node, new: Node) -> Graph:
        """A graph with ``old`` replaced by ``new`` (same position)."""
        return Graph(self.inputs, [new if n is old else n for n in self.nodes], self.outputs, self.name,
                     meta=dict(self.meta))

    def remove_node(self, node: Node) -> Graph:
        """A graph without ``node``, whose readers read its (first) input instead."""
        src = node.inputs[0]
        nodes = [replace(n, inputs=tuple(src if i == node.output else i for i in n.inputs))
                 for n in self.nodes if n is not node]
        outputs = [src if o == node.output else o for o in self.outputs]
        return Graph(self.inputs, nodes, outputs, self.name, meta=dict(self.meta))

    def ops(self) -> list[str]:
        return [n.op for n in self.nodes]

    def summary(self) -> str:
        """One line a node: name, op, inputs → output shape and layout."""
        lines = [f"graph {self.name}: inputs " + ", ".join(f"{t.name} {t.shape} {t.layout}" for t in self.inputs)]
        for n in self.nodes:
            t = self.tensors[n.output]
            extra = ""
            if isinstance(n, Conv):
                extra = (f" k={n.kernel} s={n.stride} p={n.padding} g={n.groups} act={n.act}"
                         + (" +pool" if n.pool else ""))
            elif isinstance(n, (Linear, Add)):
                extra = f" act={n.act}"
            elif isinstance(n, Pool):
                extra = f" {n.kind} k={n.kernel} s={n.stride}"
            lines.append(f"  {n.name:<16} {n.op:<9} {', '.join(n.inputs)} -> {t.shape} {t.layout}{extra}")
        return "\n".join(lines)
