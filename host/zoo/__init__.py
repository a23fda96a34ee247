"""A model zoo: well-known tiny networks as plain PyTorch ``nn.Module`` classes
(:mod:`.models`), each with an offline, seeded data set shaped like its task
(:mod:`.data`), registered in :data:`ZOO`.

``get(name)`` returns a :class:`ZooEntry`; ``entry.factory()`` builds a fresh model,
``entry.dataset(n_train, n_test, seed)`` draws its data. Every model imports through
:func:`zeroskip.host.frontends.from_torch` with ``entry.input_shape``.

========================  ===========  ================  ===================================
name                      input        output            source
========================  ===========  ================  ===================================
``tinycnn``               1×16×16      10 classes        this project (TinyCNN)
``lenet5``                1×28×28      10 classes        LeCun et al. 1998
``dscnn_kws``             1×49×10      12 classes        MLPerf Tiny keyword spotting
``resnet8``               3×32×32      10 classes        MLPerf Tiny image classification
``fc_autoencoder``        640          640 (recon.)      MLPerf Tiny anomaly detection
``jet_mlp``               16           5 classes         hls4ml tutorial (jet tagging)
``sparsepixels``          1×63×63      3 classes         this project (sparse-pixel CNN)
========================  ===========  ================  ===================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from zeroskip.host.zoo import data
from zeroskip.host.zoo.models import (
    DSCNNKWS,
    FCAutoencoder,
    JetMLP,
    LeNet5,
    ResidualBlock,
    ResNet8,
    SparseCNN,
    TinyCNN,
    sparse_pixels,
)

TASKS = ("classification", "autoencoder")


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: ``factory()`` builds it (fresh weights from the global torch RNG),
    for inputs of ``input_shape`` (without the batch dimension) and ``n_out`` outputs
    (classes, or reconstructed features for an autoencoder). ``dataset(n_train, n_test,
    seed)`` returns ``(x_train, y_train, x_test, y_test)`` numpy arrays (inputs float32,
    labels int64; ``y`` is ``x`` for an autoencoder)."""

    name: str
    factory: Callable
    input_shape: tuple
    n_out: int
    task: str
    source: str
    dataset: Callable

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"{self.name}: task must be one of {TASKS}, got {self.task!r}")
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))


_ENTRIES = (
    ZooEntry("tinycnn", TinyCNN, (1, 16, 16), 10, "classification",
             "this project: TinyCNN (host/models/cnn.py, tiny_cnn_spec)", data.digits16),
    ZooEntry("lenet5", LeNet5, (1, 28, 28), 10, "classification",
             "LeCun, Bottou, Bengio, Haffner, 'Gradient-based learning applied to document recognition', "
             "Proc. IEEE 1998 (ReLU / max-pool variant)", data.digits28),
    ZooEntry("dscnn_kws", DSCNNKWS, (1, 49, 10), 12, "classification",
             "MLPerf Tiny keyword spotting reference DS-CNN (mlcommons/tiny, benchmark/training/keyword_spotting); "
             "Zhang et al., 'Hello Edge', arXiv:1711.07128", data.keywords),
    ZooEntry("resnet8", ResNet8, (3, 32, 32), 10, "classification",
             "MLPerf Tiny image classification reference ResNet-8 (mlcommons/tiny, "
             "benchmark/training/image_classification, resnet_v1_eembc)", data.shapes),
    ZooEntry("fc_autoencoder", FCAutoencoder, (640,), 640, "autoencoder",
             "MLPerf Tiny anomaly detection reference FC autoencoder (mlcommons/tiny, "
             "benchmark/training/anomaly_detection; DCASE 2020 Task 2 baseline)", data.machine_sounds),
    ZooEntry("jet_mlp", JetMLP, (16,), 5, "classification",
             "hls4ml tutorial part 1 jet-tagging MLP (fastmachinelearning/hls4ml-tutorial); Duarte et al., "
             "JINST 13 P07027 (2018)", data.jets),
    ZooEntry("sparsepixels", sparse_pixels, (1, 63, 63), 3, "classification",
             "this project: sparse-pixel CNN (host/models/sparse.py, sparse_pixels_spec)", data.detector),
)

ZOO: dict[str, ZooEntry] = {e.name: e for e in _ENTRIES}


def get(name: str) -> ZooEntry:
    """The zoo entry ``name``; a ValueError listing the names for an unknown one."""
    try:
        return ZOO[name]
    except KeyError:
        raise ValueError(f"unknown zoo model {name!r}: choose one of {', '.join(ZOO)}") from None


__all__ = ["ZOO", "ZooEntry", "TASKS", "get", "data", "TinyCNN", "LeNet5", "DSCNNKWS", "ResidualBlock", "ResNet8",
           "FCAutoencoder", "JetMLP", "SparseCNN", "sparse_pixels"]
