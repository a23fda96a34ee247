"""Small image datasets for training and checking models, with no downloads.

``load_dataset(name, seed)`` returns a frozen :class:`Dataset` of float32 images in
(N, C, H, W) layout with values in [0, 1] and int64 labels:

- ``"synthetic"`` (default): 16×16 single-channel images drawn procedurally with a seeded
  numpy generator. Class 0 holds *strokes* (a vertical bar, a horizontal bar or a cross),
  class 1 holds *closed outlines* (a square box or a ring). Position, size, stroke width,
  brightness and contrast are random; the images carry Gaussian noise and a few bright
  clutter pixels, so the task is easy for a small CNN but not for a linear model.
- ``"digits"``: scikit-learn's bundled 8×8 handwritten digits (10 classes), scaled by
  1/16 to [0, 1], split 75/25 with a stratified, seeded split.

The same ``(name, seed, n_train, n_test)`` always gives the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DATASETS = ("synthetic", "digits", "detector")

SYNTH_SIZE = 16
SYNTH_N_TRAIN, SYNTH_N_TEST = 2000, 500
DIGITS_TEST_FRACTION = 0.25


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split. Images float32 (N, C, H, W) in [0, 1]; labels int64 (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str
    input_shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.input_shape):
                raise ValueError(f"x_{split} has shape {x.shape}, expected (N, *{self.input_shape})")
            if y.shape != (x.shape[0],):
                raise ValueError(f"y_{split} has shape {y.shape}, expected ({x.shape[0]},)")


def load_dataset(name: str = "synthetic", seed: int = 0, n_train: int | None = None,
                 n_test: int | None = None) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`) with a seeded split.

    ``n_train`` / ``n_test`` default to 2000 / 500 for ``"synthetic"`` and to a 75/25
    split of the 1797 images for ``"digits"`` (there, ``n_train + n_test`` may not exceed
    1797).
    """
    if name == "detector":
        from zeroskip.host.data.detector import load_detector  # detector.py imports Dataset from here

        return load_detector(seed, n_train, n_test)
    if name == "synthetic":
        n_train = SYNTH_N_TRAIN if n_train is None else int(n_train)
        n_test = SYNTH_N_TEST if n_test is None else int(n_test)
        _check_sizes(name, n_train, n_test)
        rng = np.random.default_rng(seed)
        x_train, y_train = make_synthetic(rng, n_train)
        x_test, y_test = make_synthetic(rng, n_test)
        return Dataset(x_train, y_train, x_test, y_test, 2, name, (1, SYNTH_SIZE, SYNTH_SIZE))
    if name == "digits":
        return _load_digits(seed, n_train, n_test)
    raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")


def _check_sizes(name: str, n_train: int, n_test: int) -> None:
    if n_train < 1 or n_test < 1:
        raise ValueError(f"{name}: n_train and n_test must be >= 1, got {n_train} and {n_test}")


def _load_digits(seed: int, n_train: int | None, n_test: int | None) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    y = bunch.target.astype(np.int64)
    total = len(y)
    if n_test is None:
        n_test = round(total * DIGITS_TEST_FRACTION) if n_train is None else total - int(n_train)
    if n_train is None:
        n_train = total - int(n_test)
    n_train, n_test = int(n_train), int(n_test)
    _check_sizes("digits", n_train, n_test)
    if n_train + n_test > total:
        raise ValueError(f"digits has {total} images; n_train + n_test = {n_train + n_test} is too many")
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, train_size=n_train, test_size=n_test, stratify=y, random_state=seed)
    return Dataset(np.ascontiguousarray(x_tr), y_tr, np.ascontiguousarray(x_te), y_te, 10, "digits",
                   (1, 8, 8))


def make_synthetic(rng: np.random.Generator, n: int, size: int = SYNTH_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` balanced synthetic images (float32 (n, 1, size, size)) and labels (int64).

    Every shape is rendered with anti-aliased edges from a signed distance: a stroke pixel
    has intensity ``clip(width/2 + 0.5 - distance, 0, 1)``.
    """
    y = rng.permutation(np.arange(n) % 2).astype(np.int64)
    # Shape kind within the class: 0 vertical bar, 1 horizontal bar, 2 cross | 0 box, 1 ring.
    kind = np.where(y == 0, rng.integers(0, 3, n), rng.integers(0, 2, n))
    c = (size - 1) / 2.0
    cy = c + rng.uniform(-3.0, 3.0, n)
    cx = c + rng.uniform(-3.0, 3.0, n)
    radius = rng.uniform(2.5, 5.5, n)          # half length of a bar / radius of an outline
    width = rng.uniform(0.8, 2.0, n)           # stroke width in pixels
    background = rng.uniform(0.0, 0.25, n)
    bright = background + rng.uniform(0.35, 0.75, n)  # stroke level: contrast >= 0.35

    grid = np.arange(size, dtype=np.float64)
    dy = grid[None, :, None] - cy[:, None, None]  # (n, size, 1)
    dx = grid[None, None, :] - cx[:, None, None]  # (n, 1, size)
    r = radius[:, None, None]
    half_w = width[:, None, None] / 2.0

    def ink(dist: np.ndarray) -> np.ndarray:
        return np.clip(half_w + 0.5 - dist, 0.0, 1.0)

    ady, adx = np.abs(dy), np.abs(dx)
    vert = np.maximum(adx, np.maximum(ady - r, 0.0))           # distance to a vertical segment
    horiz = np.maximum(ady, np.maximum(adx - r, 0.0))          # distance to a horizontal segment
    box = np.abs(np.maximum(ady, adx) - r)                     # distance to a square outline
    ring = np.abs(np.sqrt(dy * dy + dx * dx) - r)              # distance to a circle
    kind3 = kind[:, None, None]
    cls0 = y[:, None, None] == 0
    dist = np.where(cls0,
                    np.where(kind3 == 0, vert, np.where(kind3 == 1, horiz, np.minimum(vert, horiz))),
                    np.where(kind3 == 0, box, ring))
    img = background[:, None, None] + (bright - background)[:, None, None] * ink(dist)

    # Clutter: a few isolated bright pixels, then sensor noise.
    clutter = rng.random((n, size, size)) < rng.uniform(0.0, 0.03, n)[:, None, None]
    img = np.where(clutter, np.maximum(img, rng.uniform(0.4, 1.0, (n, size, size))), img)
    img = img + rng.normal(0.0, 1.0, (n, size, size)) * rng.uniform(0.03, 0.12, n)[:, None, None]
    x = np.clip(img, 0.0, 1.0).astype(np.float32)[:, None, :, :]
    return x, y
