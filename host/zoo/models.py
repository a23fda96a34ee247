"""The zoo's networks, written as a user writes them: plain ``nn.Module`` classes built
from standard ``torch.nn`` layers (``Conv2d``, ``BatchNorm1d/2d``, ``ReLU``,
``MaxPool2d``, ``AdaptiveAvgPool2d``, ``Flatten``, ``Linear``, ``Dropout``), residual adds
written as ``x + y`` in ``forward``. Each class docstring names the model it follows and
every place where a PyTorch rendering has to choose something the source leaves open
(Keras ``padding='same'`` has no exact symmetric PyTorch equivalent for stride 2 or
even kernels; the choices below keep every feature-map shape of the reference).

All classes take their sizes as constructor arguments with the reference values as
defaults; ``Model()`` is the reference model.
"""

from __future__ import annotations

import torch
from torch import nn
from zeroskip.host.models.cnn import tiny_cnn_spec
from zeroskip.host.models.sparse import SparseCNN, build_sparse_model, sparse_pixels_spec

__all__ = ["TinyCNN", "LeNet5", "DSCNNKWS", "ResidualBlock", "ResNet8", "FCAutoencoder", "JetMLP", "SparseCNN",
           "sparse_pixels"]


class TinyCNN(nn.Module):
    """Today's TinyCNN (:func:`zeroskip.host.models.cnn.tiny_cnn_spec`, the project's
    default model) as a plain ``nn.Sequential``-style module: conv3×3(8, pad 1) → ReLU →
    max-pool 2 → conv3×3(16, pad 1) → ReLU → max-pool 2 → flatten → Linear(n_classes).

    The layers are generated from the spec, so this class and
    :class:`~zeroskip.host.models.cnn.SpecCNN` describe the same network (same layer
    shapes; the parameters are those of ``SpecCNN.layers`` in the order of
    ``features`` then ``classifier``).

    Source: this project, ``host/models/cnn.py``.
    """

    def __init__(self, input_shape: tuple[int, int, int] = (1, 16, 16), n_classes: int = 10) -> None:
        super().__init__()
        spec = tiny_cnn_spec(input_shape, n_classes)
        layers: list[nn.Module] = []
        c_in = spec.input_shape[0]
        for cv in spec.convs:
            layers += [nn.Conv2d(c_in, cv.out_channels, cv.kernel, padding=cv.padding), nn.ReLU()]
            if cv.pool:
                layers.append(nn.MaxPool2d(2))
            c_in = cv.out_channels
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Flatten()]
        n_in = spec.flat_features
        for n_hidden in spec.fcs:
            head += [nn.Linear(n_in, n_hidden), nn.ReLU()]
            n_in = n_hidden
        head.append(nn.Linear(n_in, spec.n_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class LeNet5(nn.Module):
    """LeNet-5 for 1×28×28 images: conv5×5(6, pad 2) → ReLU → max-pool 2 → conv5×5(16)
    → ReLU → max-pool 2 → flatten (16·5·5 = 400) → FC 120 → ReLU → FC 84 → ReLU → FC 10.

    Source: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied
    to document recognition", Proc. IEEE 86(11), 1998 (architecture "LeNet-5"). As in
    most modern renderings, the sigmoid/tanh squashing and the trainable subsampling are
    replaced by ReLU and max-pooling, the sparse C3 connection table by a full
    convolution, and the RBF output layer by a linear layer; the 32×32 input with its
    blank border becomes a 28×28 input with padding 2 in the first convolution.
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class DSCNNKWS(nn.Module):
    """Depthwise-separable CNN for keyword spotting on 49 frames × 10 MFCCs (1×49×10),
    12 classes (10 keywords, "silence", "unknown").

    stem: conv(10×4, stride 2, 64) → BN → ReLU → Dropout(0.2); 4 blocks of
    depthwise conv3×3 (pad 1) → BN → ReLU → pointwise conv1×1(64) → BN → ReLU;
    Dropout(0.4) → global average pool → flatten → Linear(64 → 12).

    Source: MLPerf Tiny keyword-spotting reference model (mlcommons/tiny,
    ``benchmark/training/keyword_spotting``), the "DS-CNN" of Y. Zhang, N. Suda, L. Lai,
    V. Chandra, "Hello Edge: Keyword Spotting on Microcontrollers", arXiv:1711.07128.

    Padding choice: the reference's stem uses Keras ``padding='same'``, which for a
    10×4 kernel at stride 2 on 49×10 pads 4 rows above and 5 below, 1 column each side
    (output 25×5). PyTorch takes one padding per side pair, so the stem uses the
    symmetric ``padding=(5, 1)``: the output is also 25×5 and every layer shape and
    parameter count matches the reference; the receptive fields sit one row lower.
    The reference's final ``AveragePooling2D`` over the whole 25×5 map is written as
    ``AdaptiveAvgPool2d(1)``. The reference convolutions carry biases (Keras default),
    kept here; a folded BatchNorm absorbs them.
    """

    def __init__(self, n_classes: int = 12, channels: int = 64, n_blocks: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels, (10, 4), stride=2, padding=(5, 1)), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Dropout(0.2))
        blocks: list[nn.Module] = []
        for _ in range(n_blocks):
            blocks += [nn.Conv2d(channels, channels, 3, padding=1, groups=channels), nn.BatchNorm2d(channels),
                       nn.ReLU(),
                       nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU()]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(0.4), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(channels, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


class ResidualBlock(nn.Module):
    """One ResNet-v1 basic block: conv3×3(stride) → BN → ReLU → conv3×3 → BN, plus the
    shortcut (the input itself, or a 1×1 convolution with the block's stride when the
    shape changes; no BatchNorm on it, as in the MLPerf Tiny reference), then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride) if (stride != 1 or c_in != c_out) else None
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        s = x if self.shortcut is None else self.shortcut(x)
        return self.relu2(s + y)


class ResNet8(nn.Module):
    """ResNet-8 for 3×32×32 images, 10 classes: conv3×3(16) → BN → ReLU, three stacks of
    one :class:`ResidualBlock` each (16 ch stride 1 with an identity shortcut; 32 ch and
    64 ch stride 2 with 1×1 stride-2 convolution shortcuts), global average pool (8×8),
    flatten, Linear(64 → 10).

    Source: MLPerf Tiny image-classification reference model (mlcommons/tiny,
    ``benchmark/training/image_classification/keras_model.py``, ``resnet_v1_eembc``, with
    the 16/32/64 filters of the v0.5 benchmark), after K. He, X. Zhang, S. Ren, J. Sun,
    "Deep Residual Learning for Image Recognition", CVPR 2016.

    Padding choice: the reference's stride-2 3×3 convolutions use Keras
    ``padding='same'`` (0 rows/columns before, 1 after); here ``padding=1`` on every
    side, which gives the same 16×16 and 8×8 maps (the windows are shifted by one
    pixel). Stride-1 convolutions and the 1×1 shortcuts are identical to the reference.
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.stem = nn.Sequential(nn.Conv2d(in_channels, w1, 3, padding=1), nn.BatchNorm2d(w1), nn.ReLU())
        self.stack1 = ResidualBlock(w1, w1, 1)
        self.stack2 = ResidualBlock(w1, w2, 2)
        self.stack3 = ResidualBlock(w2, w3, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(w3, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stack3(self.stack2(self.stack1(self.stem(x))))
        return self.fc(self.flatten(self.pool(x)))


class FCAutoencoder(nn.Module):
    """Fully connected autoencoder for anomaly detection on 640 = 5 frames × 128 log-mel
    bins: 640 → 128 → 128 → 128 → 128 → 8 → 128 → 128 → 128 → 128 → 640, every hidden
    Linear followed by BatchNorm1d and ReLU, the output Linear plain (the reconstruction;
    the anomaly score is its mean squared error to the input).

    Source: MLPerf Tiny anomaly-detection reference model (mlcommons/tiny,
    ``benchmark/training/anomaly_detection``, the DCASE 2020 Task 2 baseline
    autoencoder; Y. Koizumi et al., "Description and Discussion on DCASE2020 Challenge
    Task2", arXiv:2006.05822).
    """

    def __init__(self, n_in: int = 640, hidden: int = 128, bottleneck: int = 8, depth: int = 4) -> None:
        super().__init__()
        sizes = [n_in] + [hidden] * depth + [bottleneck] + [hidden] * depth
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], n_in))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class JetMLP(nn.Module):
    """Jet-substructure tagging MLP: 16 high-level features → 64 → 32 → 32 → 5 classes
    (gluon, light quark, W, Z, top), ReLU after each hidden layer (the reference's final
    softmax is left to the loss).

    Source: hls4ml tutorial, part 1 (fastmachinelearning/hls4ml-tutorial,
    ``part1_getting_started``), the model of J. Duarte et al., "Fast inference of deep
    neural networks in FPGAs for particle physics", JINST 13 P07027 (2018),
    arXiv:1804.06913.
    """

    def __init__(self, n_in: int = 16, n_classes: int = 5, hidden: tuple[int, ...] = (64, 32, 32)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for n_out in hidden:
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
            n_in = n_out
        layers.append(nn.Linear(n_in, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def sparse_pixels(seed: int | None = None) -> SparseCNN:
    """Today's sparse-pixel CNN (:class:`~zeroskip.host.models.sparse.SparseCNN`) with
    its default construction, :func:`~zeroskip.host.models.sparse.sparse_pixels_spec`:
    1×63×63 detector images, input reduce (threshold 0.1, 64 sites), four sparse
    conv3×3 → ReLU → max-pool blocks (8, 8, 16, 16 channels), FC 16 → FC 3.

    Source: this project, ``host/models/sparse.py`` (docs/sparse_pixels.md).
    """
    return build_sparse_model(sparse_pixels_spec(), seed=seed)
