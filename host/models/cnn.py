"""Small CNNs described by a frozen, JSON-friendly :class:`ModelSpec`.

A spec is the part of a model the engine needs to know: stride-1 convolutions with zero
padding, each followed by ReLU and an optional 2×2 max-pool (floor: an odd last row or
column is dropped), then fully connected layers (ReLU after every hidden one) and a
final linear layer producing ``n_classes`` logits. The FC input is the last feature map
flattened in (C, H, W) order, exactly as ``torch.flatten`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ConvSpec:
    """One convolution: ``out_channels`` filters of ``kernel``×``kernel``, stride 1,
    ``padding`` zeros on every side, ReLU, then 2×2 max-pool if ``pool``."""

    out_channels: int
    kernel: int = 3
    padding: int = 1
    pool: bool = False

    def __post_init__(self) -> None:
        if self.out_channels < 1:
            raise ValueError(f"ConvSpec.out_channels must be >= 1, got {self.out_channels}")
        if self.kernel < 1:
            raise ValueError(f"ConvSpec.kernel must be >= 1, got {self.kernel}")
        if self.padding < 0:
            raise ValueError(f"ConvSpec.padding must be >= 0, got {self.padding}")


@dataclass(frozen=True)
class ModelSpec:
    """A small CNN: ``convs`` then hidden FC layers of sizes ``fcs`` then FC(n_classes)."""

    input_shape: tuple[int, int, int]
    convs: tuple[ConvSpec, ...]
    fcs: tuple[int, ...]
    n_classes: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "convs", tuple(self.convs))
        object.__setattr__(self, "fcs", tuple(int(f) for f in self.fcs))
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {self.input_shape}")
        if any(f < 1 for f in self.fcs):
            raise ValueError(f"hidden FC sizes must be >= 1, got {self.fcs}")
        if self.n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {self.n_classes}")
        self.feature_shapes()  # raises if a kernel or pool does not fit

    def feature_shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) of the input and of every conv block's output (after pooling)."""
        c, h, w = self.input_shape
        out = [(c, h, w)]
        for i, cv in enumerate(self.convs):
            h, w = h + 2 * cv.padding - cv.kernel + 1, w + 2 * cv.padding - cv.kernel + 1
            if h < 1 or w < 1:
                raise ValueError(f"conv {i}: kernel {cv.kernel} with padding {cv.padding} does not fit "
                                 f"a {out[-1][1]}x{out[-1][2]} map; lower the kernel or add padding")
            if cv.pool:
                h, w = h // 2, w // 2
                if h < 1 or w < 1:
                    raise ValueError(f"conv {i}: cannot 2x2-pool a map smaller than 2x2; drop pool")
            c = cv.out_channels
            out.append((c, h, w))
        return out

    @property
    def flat_features(self) -> int:
        """Number of inputs of the first FC layer."""
        c, h, w = self.feature_shapes()[-1]
        return c * h * w

    def to_dict(self) -> dict:
        """JSON-friendly dict (lists and ints only); inverse of :meth:`from_dict`."""
        return {
            "input_shape": list(self.input_shape),
            "convs": [{"out_channels": c.out_channels, "kernel": c.kernel, "padding": c.padding,
                       "pool": c.pool} for c in self.convs],
            "fcs": list(self.fcs),
            "n_classes": self.n_classes,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        """Build a spec from :meth:`to_dict` output (e.g. after a JSON round trip)."""
        return cls(input_shape=tuple(d["input_shape"]),
                   convs=tuple(ConvSpec(**c) for c in d["convs"]),
                   fcs=tuple(d["fcs"]), n_classes=int(d["n_classes"]))


def tiny_cnn_spec(input_shape: tuple[int, int, int], n_classes: int) -> ModelSpec:
    """TinyCNN: conv3×3(8, pad 1) → ReLU → pool → conv3×3(16, pad 1) → ReLU → pool → FC."""
    return ModelSpec(input_shape=tuple(input_shape),
                     convs=(ConvSpec(8, 3, 1, True), ConvSpec(16, 3, 1, True)),
                     fcs=(), n_classes=n_classes)


class SpecCNN(nn.Module):
    """The PyTorch model of a :class:`ModelSpec`.

    ``layers`` holds the conv and linear modules in execution order (``conv0``, ``conv1``,
    …, ``fc0``, …; the last one produces the logits); ``layer_names`` their names.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        mods: list[nn.Module] = []
        names: list[str] = []
        c_in = spec.input_shape[0]
        for i, cv in enumerate(spec.convs):
            mods.append(nn.Conv2d(c_in, cv.out_channels, cv.kernel, stride=1, padding=cv.padding))
            names.append(f"conv{i}")
            c_in = cv.out_channels
        n_in = spec.flat_features
        for i, n_out in enumerate((*spec.fcs, spec.n_classes)):
            mods.append(nn.Linear(n_in, n_out))
            names.append(f"fc{i}")
            n_in = n_out
        self.layers = nn.ModuleList(mods)
        self.layer_names = tuple(names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_conv = len(self.spec.convs)
        for cv, mod in zip(self.spec.convs, self.layers[:n_conv]):
            x = F.relu(mod(x))
            if cv.pool:
                x = F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        fcs = self.layers[n_conv:]
        for i, mod in enumerate(fcs):
            x = mod(x)
            if i < len(fcs) - 1:
                x = F.relu(x)
        return x


def build_model(spec: ModelSpec, *, seed: int | None = None) -> SpecCNN:
    """Build the PyTorch model of ``spec``.

    With ``seed`` the initial weights depend only on the seed (the global torch RNG is
    left untouched); without it they come from the global torch RNG (see
    ``train.set_seed``).
    """
    if seed is None:
        return SpecCNN(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SpecCNN(spec)
