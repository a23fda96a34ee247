"""Trainable sparse-pixel layers and models (docs/sparse_pixels.md), in PyTorch.

A sparse feature map is carried as a dense, zero-filled tensor ``x`` (N, C, H, W) plus
an activity mask ``mask`` (N, 1, H, W) bool naming the active pixels ("sites"); ``x`` is
zero wherever ``mask`` is False. The layers:

- :class:`InputReduce` ``(threshold, n_max)``: a pixel is active when its channel 0
  exceeds ``threshold``; the first ``n_max`` active pixels in raster order are kept with
  all their channels, their 1-based (h, w) are recorded, every other pixel is zeroed.
- :class:`SparseConv2d`: submanifold convolution: a dense convolution (stride 1,
  padding k//2, odd k) of the zero-filled input plus bias, kept at the active sites
  only; the active set is unchanged.
- :class:`SparseReLU`: ReLU of the active features.
- :class:`SparsePool2d` ``(mode)``: 2×2, stride 2, floor: the cells ``(h//2, w//2)``
  holding at least one active site form the new active set; ``max`` takes the largest
  of the cell's active values, ``avg`` their mean. A site whose cell lies outside the
  floor-pooled grid (odd H or W) is dropped.
- :class:`SparseFlatten`: the zero-filled (C, H, W) grid flattened as ``torch.flatten``.

:class:`SparseModelSpec` describes a model (reduce → sparse conv blocks → flatten → FC
layers), :func:`build_sparse_model` builds its :class:`SparseCNN`, and
:func:`dense_twin_spec` gives the ordinary :class:`~zeroskip.host.models.cnn.ModelSpec` of
the same size (same kernels, channels, pooling and FC layers, no reduce) for accuracy
comparisons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from zeroskip.host.models.cnn import ConvSpec, ModelSpec, SpecCNN, build_model
from zeroskip.host.quant.qmodel import LayerKind, dense_twin

POOL_MODES = ("max", "avg")
N_MAX_LIMIT = 255            # InputReduce.n_max range of the integer model (1..255)
DEFAULT_THRESHOLD = 0.1      # detector images: ADC noise stays below 0.1 of full scale
DEFAULT_N_MAX = 64           # the engine's default SITE_CAP; no default detector image has more


# ---------------------------------------------------------------- raster-order reduce

def raster_keep(active: torch.Tensor, n_max: int) -> torch.Tensor:
    """The first ``n_max`` True entries of each image's (H, W) map in raster order.

    ``active``: bool (N, H, W). Returns bool (N, H, W), True at the kept entries.
    """
    if active.ndim != 3 or active.dtype != torch.bool:
        raise ValueError(f"active must be a bool (N, H, W) tensor, got {active.dtype} {tuple(active.shape)}")
    flat = active.reshape(active.shape[0], -1)
    rank = torch.cumsum(flat.to(torch.int32), dim=1)      # 1-based rank of each active entry
    return (flat & (rank <= n_max)).reshape(active.shape)


def site_coordinates(keep: torch.Tensor, n_max: int) -> torch.Tensor:
    """1-based (h, w) of the True entries of ``keep`` (bool (N, H, W), at most ``n_max``
    per image) in raster order: int64 (N, n_max, 2), rows past the last site are (0, 0)."""
    n, h, w = keep.shape
    flat = keep.reshape(n, -1)
    slot = torch.cumsum(flat.to(torch.int64), dim=1) - 1
    if n and int(slot[:, -1].max()) >= n_max:
        raise ValueError(f"more than n_max = {n_max} sites in an image")
    img, pix = flat.nonzero(as_tuple=True)
    coords = torch.zeros(n, n_max, 2, dtype=torch.int64)
    coords[img, slot[img, pix]] = torch.stack((pix // w + 1, pix % w + 1), dim=1)
    return coords


class Reduced(NamedTuple):
    """Output of :class:`InputReduce`: the zero-filled input, the activity mask and the
    1-based site coordinates (see :func:`site_coordinates`)."""

    x: torch.Tensor       # (N, C, H, W), zero off the kept sites
    mask: torch.Tensor    # bool (N, 1, H, W)
    coords: torch.Tensor  # int64 (N, n_max, 2), 1-based (h, w), (0, 0) = empty slot

    @property
    def n_sites(self) -> torch.Tensor:
        """Number of kept sites per image, int64 (N,)."""
        return self.mask.flatten(1).sum(dim=1)


class InputReduce(nn.Module):
    """Sparse-pixel input reduce (see the module docstring). No parameters; the
    comparison ``x[:, 0] > threshold`` is done in the input's dtype."""

    def __init__(self, threshold: float, n_max: int) -> None:
        super().__init__()
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold}")
        if not 1 <= int(n_max) <= N_MAX_LIMIT:
            raise ValueError(f"n_max must be in 1..{N_MAX_LIMIT}, got {n_max}")
        self.threshold = float(threshold)
        self.n_max = int(n_max)

    def forward(self, x: torch.Tensor) -> Reduced:
        if x.ndim != 4:
            raise ValueError(f"InputReduce expects (N, C, H, W), got shape {tuple(x.shape)}")
        keep = raster_keep(x[:, 0] > self.threshold, self.n_max)
        mask = keep.unsqueeze(1)
        return Reduced(x * mask.to(x.dtype), mask, site_coordinates(keep, self.n_max))

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, n_max={self.n_max}"


# ---------------------------------------------------------------- sparse layers

def _check_pair(x: torch.Tensor, mask: torch.Tensor) -> None:
    if x.ndim != 4 or mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != x.shape[0] \
            or mask.shape[2:] != x.shape[2:] or mask.dtype != torch.bool:
        raise ValueError(f"expected x (N, C, H, W) and a bool mask (N, 1, H, W), got {tuple(x.shape)} "
                         f"and {mask.dtype} {tuple(mask.shape)}")


class SparseConv2d(nn.Conv2d):
    """Submanifold convolution: ``conv2d(x, padding=k//2) * mask`` for a zero-filled
    ``x``; ``forward(x, mask) -> (y, mask)``. A ``Conv2d`` subclass, so pruning
    (``prune.prunable_layers``) and quantisation see its ``weight`` and ``bias``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True) -> None:
        k = int(kernel_size)
        if k < 1 or k % 2 == 0:
            raise ValueError(f"a sparse conv needs an odd kernel size, got {kernel_size}")
        super().__init__(in_channels, out_channels, k, stride=1, padding=k // 2, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        _check_pair(x, mask)
        return super().forward(x) * mask.to(x.dtype), mask


class SparseReLU(nn.Module):
    """ReLU of the active features: ``forward(x, mask) -> (relu(x), mask)``."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.relu(x), mask


class SparsePool2d(nn.Module):
    """Sparse 2×2 pooling, stride 2, floor: ``forward(x, mask) -> (y, pooled_mask)``.

    ``max``: the largest active value of each cell (any sign; after a ReLU this equals
    ``max_pool2d`` of the zero-filled map). ``avg``: the mean over the cell's active
    sites (not over 4). With ``nonnegative=True`` the caller promises ``x >= 0`` (a ReLU
    before) and max pooling takes the cheaper ``max_pool2d`` of the zero-filled map.
    """

    def __init__(self, mode: str = "max", nonnegative: bool = False) -> None:
        super().__init__()
        if mode not in POOL_MODES:
            raise ValueError(f"pooling mode must be one of {POOL_MODES}, got {mode!r}")
        self.mode = mode
        self.nonnegative = bool(nonnegative)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_pair(x, mask)
        if x.shape[2] < 2 or x.shape[3] < 2:
            raise ValueError(f"cannot 2x2-pool a {x.shape[2]}x{x.shape[3]} map")
        m = mask.to(x.dtype)
        count = F.avg_pool2d(m, 2, divisor_override=1)          # active sites per cell
        new_mask = count > 0
        if self.mode == "max" and self.nonnegative:
            return F.max_pool2d(x, 2), F.max_pool2d(m, 2) > 0
        if self.mode == "max":
            pooled = F.max_pool2d(x.masked_fill(~mask, torch.finfo(x.dtype).min), 2)
            y = torch.where(new_mask, pooled, torch.zeros((), dtype=x.dtype))
        else:
            y = F.avg_pool2d(x * m, 2, divisor_override=1) / count.clamp(min=1)
        return y, new_mask

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, nonnegative={self.nonnegative}"


class SparseFlatten(nn.Module):
    """The zero-filled grid flattened in (C, H, W) order: ``forward(x, mask) -> (N, C·H·W)``."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _check_pair(x, mask)
        return torch.flatten(x * mask.to(x.dtype), 1)


# ---------------------------------------------------------------- model description

@dataclass(frozen=True)
class SparseConvSpec:
    """One sparse conv block: ``out_channels`` filters of ``kernel``×``kernel`` (odd),
    ReLU if ``relu``, then sparse pooling ``pool`` (``'max'``, ``'avg'`` or None).
    ``'max'`` pooling needs ``relu`` (the integer model requires it)."""

    out_channels: int
    kernel: int = 3
    relu: bool = True
    pool: str | None = "max"

    def __post_init__(self) -> None:
        if self.out_channels < 1:
            raise ValueError(f"SparseConvSpec.out_channels must be >= 1, got {self.out_channels}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"SparseConvSpec.kernel must be odd and >= 1, got {self.kernel}")
        if self.pool is not None and self.pool not in POOL_MODES:
            raise ValueError(f"SparseConvSpec.pool must be one of {POOL_MODES} or None, got {self.pool!r}")
        if self.pool == "max" and not self.relu:
            raise ValueError("sparse max pooling needs relu=True on its conv block")


@dataclass(frozen=True)
class SparseModelSpec:
    """Reduce (``threshold`` in input units, ``n_max`` sites) → ``convs`` → flatten →
    hidden FC layers ``fcs`` (ReLU) → FC(``n_classes``)."""

    input_shape: tuple[int, int, int]
    threshold: float
    n_max: int
    convs: tuple[SparseConvSpec, ...]
    fcs: tuple[int, ...]
    n_classes: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "n_max", int(self.n_max))
        object.__setattr__(self, "convs", tuple(self.convs))
        object.__setattr__(self, "fcs", tuple(int(f) for f in self.fcs))
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {self.input_shape}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold}")
        if not 1 <= self.n_max <= N_MAX_LIMIT:
            raise ValueError(f"n_max must be in 1..{N_MAX_LIMIT}, got {self.n_max}")
        if not self.convs:
            raise ValueError("a sparse model needs at least one sparse conv")
        if any(f < 1 for f in self.fcs):
            raise ValueError(f"hidden FC sizes must be >= 1, got {self.fcs}")
        if self.n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {self.n_classes}")
        self.feature_shapes()

    def feature_shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) of the input and of every conv block's output (after pooling)."""
        c, h, w = self.input_shape
        out = [(c, h, w)]
        for i, cv in enumerate(self.convs):
            if cv.pool:
                if h < 2 or w < 2:
                    raise ValueError(f"sparse conv {i}: cannot 2x2-pool a {h}x{w} map; drop pool")
                h, w = h // 2, w // 2
            c = cv.out_channels
            out.append((c, h, w))
        return out

    @property
    def flat_features(self) -> int:
        """Number of inputs of the first FC layer."""
        c, h, w = self.feature_shapes()[-1]
        return c * h * w

    def layers(self) -> tuple[tuple[LayerKind, object], ...]:
        """The engine layers of the model, as ``(kind, spec)``: ``(SCONV, conv block)``,
        ``(SPOOL, pool mode)`` after a pooled block, ``(FC, output size)``."""
        out: list[tuple[LayerKind, object]] = []
        for cv in self.convs:
            out.append((LayerKind.SCONV, cv))
            if cv.pool:
                out.append((LayerKind.SPOOL, cv.pool))
        return (*out, *((LayerKind.FC, n) for n in (*self.fcs, self.n_classes)))

    def to_dict(self) -> dict:
        """JSON-friendly dict; inverse of :meth:`from_dict`."""
        return {
            "input_shape": list(self.input_shape), "threshold": self.threshold, "n_max": self.n_max,
            "convs": [{"out_channels": c.out_channels, "kernel": c.kernel, "relu": c.relu, "pool": c.pool}
                      for c in self.convs],
            "fcs": list(self.fcs), "n_classes": self.n_classes,
        }

    @classmethod
    def from_dict(cls, d: dict) -> SparseModelSpec:
        """Build a spec from :meth:`to_dict` output (e.g. after a JSON round trip)."""
        return cls(input_shape=tuple(d["input_shape"]), threshold=float(d["threshold"]), n_max=int(d["n_max"]),
                   convs=tuple(SparseConvSpec(**c) for c in d["convs"]), fcs=tuple(d["fcs"]),
                   n_classes=int(d["n_classes"]))


def sparse_pixels_spec(input_shape: tuple[int, int, int] = (1, 63, 63), n_classes: int = 3, *,
                       threshold: float = DEFAULT_THRESHOLD, n_max: int = DEFAULT_N_MAX) -> SparseModelSpec:
    """The default sparse model for 63×63 detector images: four blocks of sconv3×3 → ReLU
    → max-pool with 8, 8, 16, 16 channels (63 → 31 → 15 → 7 → 3), flatten (144), FC(16)
    → ReLU → FC(n_classes); 6.5 k parameters.

    Four pooling stages make the FC input nearly translation invariant and give the last
    convolution a ~40 px receptive field, enough to see a track's curvature; with two
    stages (8×15×15 features) the FC layer memorises positions and overfits.
    """
    return SparseModelSpec(input_shape=tuple(input_shape), threshold=threshold, n_max=n_max,
                           convs=(SparseConvSpec(8, 3, True, "max"), SparseConvSpec(8, 3, True, "max"),
                                  SparseConvSpec(16, 3, True, "max"), SparseConvSpec(16, 3, True, "max")),
                           fcs=(16,), n_classes=n_classes)


def dense_twin_spec(spec: SparseModelSpec) -> ModelSpec:
    """The ordinary CNN of the same size, the float form of the one dense twin
    (:func:`zeroskip.host.quant.qmodel.dense_twin`): every sparse conv becomes a dense conv
    with the same kernel, channels and padding k//2, a sparse pooling the 2×2 max-pool of
    the conv before it, FC layers are unchanged, there is no reduce. The parameter count
    and every feature-map shape are those of ``spec``. (A dense conv is always followed
    by ReLU, and a dense pool is always max, so for blocks with ``relu=False`` or ``avg``
    pooling the twin differs in those non-linearities.)"""
    twin = dense_twin(spec.layers())
    return ModelSpec(input_shape=spec.input_shape,
                     convs=tuple(ConvSpec(cv.out_channels, cv.kernel, cv.kernel // 2, pool)
                                 for kind, cv, pool in twin if kind is LayerKind.CONV),
                     fcs=spec.fcs, n_classes=spec.n_classes)


def build_dense_twin(spec: SparseModelSpec, *, seed: int | None = None) -> SpecCNN:
    """``models.build_model(dense_twin_spec(spec), seed=seed)``."""
    return build_model(dense_twin_spec(spec), seed=seed)


# ---------------------------------------------------------------- the model

class SparseCNN(nn.Module):
    """The PyTorch model of a :class:`SparseModelSpec`: ``forward(x)`` takes dense
    (N, C, H, W) images and returns logits (N, n_classes).

    ``layers`` holds the weighted modules in execution order (``SparseConv2d`` ``sconv0``,
    ``sconv1``, …, then ``nn.Linear`` ``fc0``, …); ``layer_names`` their names; ``reduce``
    the :class:`InputReduce`. :meth:`forward_layers` gives one output per layer of the
    quantised model (sconv, spool, fc), in that model's order.
    """

    def __init__(self, spec: SparseModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.reduce = InputReduce(spec.threshold, spec.n_max)
        mods: list[nn.Module] = []
        names: list[str] = []
        c_in = spec.input_shape[0]
        for i, cv in enumerate(spec.convs):
            mods.append(SparseConv2d(c_in, cv.out_channels, cv.kernel))
            names.append(f"sconv{i}")
            c_in = cv.out_channels
        n_in = spec.flat_features
        for i, n_out in enumerate((*spec.fcs, spec.n_classes)):
            mods.append(nn.Linear(n_in, n_out))
            names.append(f"fc{i}")
            n_in = n_out
        self.layers = nn.ModuleList(mods)
        self.layer_names = tuple(names)
        self.relu = SparseReLU()
        self.pools = nn.ModuleDict({str(i): SparsePool2d(cv.pool, nonnegative=cv.relu)
                                    for i, cv in enumerate(spec.convs) if cv.pool})
        self.flatten = SparseFlatten()

    def qlayer_names(self) -> tuple[str, ...]:
        """Names of the quantised model's layers: ``sconv<i>`` [``spool<i>``] … ``fc<j>``."""
        names: list[str] = []
        for i, cv in enumerate(self.spec.convs):
            names.append(f"sconv{i}")
            if cv.pool:
                names.append(f"spool{i}")
        return (*names, *self.layer_names[len(self.spec.convs):])

    def forward_layers(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        """Outputs of every quantised-model layer (sconv after its ReLU, spool, fc after
        its ReLU except the last) and the activity mask after each (None for fc)."""
        spec = self.spec
        n_conv = len(spec.convs)
        a, mask, _ = self.reduce(x)
        outs: list[torch.Tensor] = []
        masks: list[torch.Tensor | None] = []
        for i, (cv, conv) in enumerate(zip(spec.convs, self.layers[:n_conv])):
            a, mask = conv(a, mask)
            if cv.relu:
                a, mask = self.relu(a, mask)
            outs.append(a)
            masks.append(mask)
            if cv.pool:
                a, mask = self.pools[str(i)](a, mask)
                outs.append(a)
                masks.append(mask)
        a = self.flatten(a, mask)
        fcs = self.layers[n_conv:]
        for i, fc in enumerate(fcs):
            a = fc(a)
            if i < len(fcs) - 1:
                a = F.relu(a)
            outs.append(a)
            masks.append(None)
        return outs, masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_layers(x)[0][-1]


def build_sparse_model(spec: SparseModelSpec, *, seed: int | None = None) -> SparseCNN:
    """Build the :class:`SparseCNN` of ``spec``; with ``seed`` the initial weights depend
    only on the seed (the global torch RNG is left untouched), as ``models.build_model``."""
    if seed is None:
        return SparseCNN(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SparseCNN(spec)
