"""A synthetic particle-detector image set (no downloads) for the sparse-pixel models.

``load_detector(seed)`` returns a :class:`~zeroskip.host.data.datasets.Dataset` of 63×63
single-channel images: the energy deposited in each pixel of a silicon-like pixel
sensor, digitised by a 7-bit ADC (values are multiples of 1/127 in [0, 1]; 0 is the
empty background). Three balanced classes:

- **0 straight track**: a particle crossing the sensor along a line (16–32 px), with a
  little multiple scattering (a random walk of the direction);
- **1 curved track**: the same in a magnetic field, a circular arc of radius 6–18 px
  (it turns by at least 0.9 rad over its length) with the same scattering;
- **2 shower**: a short incoming stub (0–10 px) ending in a compact cluster of deposits
  (Gaussian spread 0.8–2 px), which saturates some pixels at 1.

Along a track a pixel collects ``dE/dx × path length in the pixel`` with a per-track
``dE/dx`` and a per-pixel log-normal (Landau-like) fluctuation, so pixels clipped at a
corner fall below the threshold and tracks have gaps. Every image also holds
electronic-noise pixels (values 1/127..0.08, below the default threshold of 0.1) and a
few isolated noise hits above it. On the default set about 0.7 % of the pixels exceed
the threshold (never more than 2 % of an image) and about 1 % are non-zero.

The same ``(seed, n_train, n_test, size)`` always gives the same arrays; train and test
images are drawn from one seeded numpy generator in that order.
"""

from __future__ import annotations

import numpy as np

from zeroskip.host.data.datasets import Dataset

DETECTOR_SIZE = 63
DETECTOR_N_TRAIN, DETECTOR_N_TEST = 4000, 1000
DETECTOR_THRESHOLD = 0.1   # the reduce threshold the default sparse model uses (input units)
ADC_LEVELS = 127           # values are k / ADC_LEVELS, k = 0..127
CLASS_NAMES = ("straight track", "curved track", "shower")

_STEP = 0.2                # path sampling step (px)
_TRACK_LEN = (16.0, 32.0)  # track length range (px)
_RADIUS = (6.0, 18.0)      # curvature radius range of class 1 (px)
_SCATTER = 0.015           # direction random walk, rad per sqrt(px)
_DEDX = (0.22, 0.45)       # deposit per px of path (full scale = 1)
_LANDAU_SIGMA = 0.35       # per-pixel log-normal fluctuation
_STUB_LEN = (0.0, 10.0)    # shower: incoming stub length
_SHOWER_SPREAD = (0.8, 2.0)
_SHOWER_DEPOSITS = (12, 40)  # point deposits in a shower core
_SHOWER_ENERGY = 0.12      # mean energy of one shower deposit
_NOISE_PIXELS = 12.0       # mean number of electronic-noise pixels (below threshold)
_NOISE_HITS = 1.5          # mean number of isolated noise hits above threshold


def load_detector(seed: int = 0, n_train: int | None = None, n_test: int | None = None,
                  size: int = DETECTOR_SIZE) -> Dataset:
    """The detector set: ``n_train`` (default 4000) and ``n_test`` (default 1000) balanced
    images of ``size``×``size`` (default 63, at least 16), float32 (N, 1, size, size) in
    [0, 1], labels int64 in {0, 1, 2} (see :data:`CLASS_NAMES`)."""
    n_train = DETECTOR_N_TRAIN if n_train is None else int(n_train)
    n_test = DETECTOR_N_TEST if n_test is None else int(n_test)
    if n_train < 1 or n_test < 1:
        raise ValueError(f"detector: n_train and n_test must be >= 1, got {n_train} and {n_test}")
    if size < 16:
        raise ValueError(f"detector: size must be >= 16, got {size}")
    rng = np.random.default_rng(seed)
    x_train, y_train = make_detector(rng, n_train, size)
    x_test, y_test = make_detector(rng, n_test, size)
    return Dataset(x_train, y_train, x_test, y_test, len(CLASS_NAMES), "detector", (1, size, size))


def make_detector(rng: np.random.Generator, n: int, size: int = DETECTOR_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` balanced detector images (float32 (n, 1, size, size)) and labels (int64)."""
    y = rng.permutation(np.arange(n) % len(CLASS_NAMES)).astype(np.int64)
    energy = np.zeros(n * size * size, np.float64)
    scale = size / DETECTOR_SIZE  # lengths scale with the image

    # Tracks (all images; showers use a short stub). Paths are sampled symmetrically
    # around a mid point s = 0, at _STEP, up to the longest possible track.
    length = np.where(y == 2, rng.uniform(*_STUB_LEN, n), rng.uniform(*_TRACK_LEN, n)) * scale
    half = int(np.ceil(_TRACK_LEN[1] * scale / 2 / _STEP))
    s = np.arange(-half, half + 1) * _STEP                          # (M,)
    curv = np.where(y == 1, rng.choice([-1.0, 1.0], n) / (rng.uniform(*_RADIUS, n) * scale), 0.0)
    theta = rng.uniform(0.0, 2 * np.pi, n)
    walk = np.cumsum(rng.normal(0.0, _SCATTER * np.sqrt(_STEP), (n, s.size)), axis=1)
    walk -= walk[:, half:half + 1]
    phi = theta[:, None] + curv[:, None] * s[None, :] + walk        # direction along the path
    # Shower stubs end at the shower centre (s = 0 is the end, the stub lies at s < 0).
    on_path = np.where((y == 2)[:, None], (s[None, :] <= 0) & (s[None, :] >= -length[:, None]),
                       np.abs(s[None, :]) <= length[:, None] / 2)
    step_y = np.sin(phi) * _STEP
    step_x = np.cos(phi) * _STEP
    py = np.cumsum(step_y, axis=1)
    px = np.cumsum(step_x, axis=1)
    py -= py[:, half:half + 1]
    px -= px[:, half:half + 1]
    margin = 12.0 * scale
    cy = rng.uniform(margin, size - margin, n)
    cx = rng.uniform(margin, size - margin, n)
    dedx = rng.uniform(*_DEDX, n)
    _deposit(energy, size, (cy[:, None] + py)[on_path], (cx[:, None] + px)[on_path],
             np.broadcast_to((dedx * _STEP)[:, None], on_path.shape)[on_path],
             np.broadcast_to(np.arange(n)[:, None], on_path.shape)[on_path])

    # Shower cores: Gaussian clouds of point deposits around the centre.
    shower = np.flatnonzero(y == 2)
    counts = rng.integers(_SHOWER_DEPOSITS[0], _SHOWER_DEPOSITS[1] + 1, shower.size)
    owner = np.repeat(shower, counts)
    spread = np.repeat(rng.uniform(*_SHOWER_SPREAD, shower.size) * scale, counts)
    _deposit(energy, size, cy[owner] + rng.normal(0.0, 1.0, owner.size) * spread,
             cx[owner] + rng.normal(0.0, 1.0, owner.size) * spread,
             rng.exponential(_SHOWER_ENERGY, owner.size), owner)

    # Per-pixel Landau-like fluctuation of every deposit.
    hit = energy > 0
    energy[hit] *= rng.lognormal(-_LANDAU_SIGMA ** 2 / 2, _LANDAU_SIGMA, int(hit.sum()))

    # Noise: electronic noise below the threshold, and isolated hits above it.
    for mean, lo, hi in ((_NOISE_PIXELS, 1.0 / ADC_LEVELS, 0.08), (_NOISE_HITS, 0.12, 0.6)):
        k = rng.poisson(mean * scale * scale, n)
        owner = np.repeat(np.arange(n), k)
        pix = owner * size * size + rng.integers(0, size * size, owner.size)
        np.maximum.at(energy, pix, rng.uniform(lo, hi, owner.size))

    adc = np.clip(np.rint(energy * ADC_LEVELS), 0, ADC_LEVELS)
    x = (adc / ADC_LEVELS).astype(np.float32).reshape(n, 1, size, size)
    return x, y


def _deposit(energy: np.ndarray, size: int, yy: np.ndarray, xx: np.ndarray, e: np.ndarray,
             owner: np.ndarray) -> None:
    """Add deposits ``e`` at real positions (``yy``, ``xx``) of images ``owner`` into the
    flat ``energy`` array; positions outside the sensor are lost."""
    iy, ix = np.floor(yy).astype(np.int64), np.floor(xx).astype(np.int64)
    inside = (iy >= 0) & (iy < size) & (ix >= 0) & (ix < size)
    flat = (owner[inside] * size + iy[inside]) * size + ix[inside]
    energy += np.bincount(flat, weights=e[inside], minlength=energy.size)


def active_fraction(x: np.ndarray, threshold: float = DETECTOR_THRESHOLD) -> np.ndarray:
    """Fraction of pixels of each image (N, C, H, W) whose channel 0 exceeds ``threshold``."""
    x = np.asarray(x)
    return (x[:, 0] > threshold).reshape(x.shape[0], -1).mean(axis=1)
