"""Task-shaped data sets for the zoo's models, offline and seeded.

Every loader has the signature ``(n_train, n_test, seed) -> (x_train, y_train, x_test,
y_test)``: inputs float32 ``(N, *input_shape)``, labels int64 ``(N,)`` (for the
autoencoder set ``y`` is ``x``). The same arguments always give the same arrays; train
and test samples come from one seeded numpy generator, in that order. The fixed parts of
a task (keyword templates, class means, machine spectra) come from a constant seed, so
every ``seed`` draws from the same task.

- :func:`digits16` / :func:`digits28`: scikit-learn's 8×8 handwritten digits
  (:func:`zeroskip.host.data.datasets.load_dataset`), resized bilinearly to 16×16, or to
  20×20 centred in a 28×28 frame the way MNIST digits are.
- :func:`keywords`: 12-class MFCC-shaped clips (1×49×10): ten keywords, each a fixed
  sequence of three "phonemes" from a shared inventory of eight, "silence" and
  "unknown" (other phoneme sequences), with random onset, speaking rate, loudness,
  channel colouring and noise. Keywords share phonemes and differ in their order, so
  the time structure matters.
- :func:`shapes`: 10-class 3×32×32 colour images of oriented gratings (four
  orientations), filled and outlined discs and squares, crosses and checkerboards, in
  random colours, positions and sizes, with a shading gradient and noise.
- :func:`machine_sounds`: "normal machine sound" vectors of 5 frames × 128 log-mel bins
  (640): a pink background, harmonics of a rotation frequency and resonances of one of
  four machines, slow amplitude modulation, per-bin noise; standardised log energies.
- :func:`jets`: 16-feature, 5-class Gaussian mixtures (three correlated components a
  class, overlapping classes).
- :func:`detector`: the sparse-pixel detector images (:mod:`zeroskip.host.data.detector`).
"""

from __future__ import annotations

import numpy as np
from zeroskip.host.data.datasets import load_dataset
from zeroskip.host.data.detector import load_detector

__all__ = ["digits16", "digits28", "keywords", "shapes", "machine_sounds", "jets", "detector", "resize_bilinear",
           "KEYWORD_CLASSES", "SHAPE_CLASSES", "JET_CLASSES"]

N_TRAIN, N_TEST = 2000, 500
_TASK_SEED = 20240613  # fixed parts of every synthetic task

KEYWORD_CLASSES = ("silence", "unknown", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SHAPE_CLASSES = ("grating 0°", "grating 45°", "grating 90°", "grating 135°", "disc", "ring", "square",
                 "square outline", "cross", "checkerboard")
JET_CLASSES = ("g", "q", "W", "Z", "t")


def _sizes(name: str, n_train: int | None, n_test: int | None) -> tuple[int, int]:
    n_train = N_TRAIN if n_train is None else int(n_train)
    n_test = N_TEST if n_test is None else int(n_test)
    if n_train < 1 or n_test < 1:
        raise ValueError(f"{name}: n_train and n_test must be >= 1, got {n_train} and {n_test}")
    return n_train, n_test


def _split(make, name: str, n_train: int | None, n_test: int | None, seed: int):
    n_train, n_test = _sizes(name, n_train, n_test)
    rng = np.random.default_rng(seed)
    x_tr, y_tr = make(rng, n_train)
    x_te, y_te = make(rng, n_test)
    return x_tr, y_tr, x_te, y_te


def _balanced(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % k).astype(np.int64)


# ------------------------------------------------------------------ digits

def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear interpolation weights, pixel centres aligned (half-pixel
    convention, edge values repeated)."""
    pos = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    pos = np.clip(pos, 0.0, n_in - 1.0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1.0 - frac
    m[np.arange(n_out), hi] += frac
    return m


def resize_bilinear(x: np.ndarray, size: int) -> np.ndarray:
    """Resize images (N, C, H, W) to (N, C, size, size) bilinearly; float32."""
    mh = _interp_matrix(x.shape[2], size)
    mw = _interp_matrix(x.shape[3], size)
    return np.einsum("ih,nchw,jw->ncij", mh, x.astype(np.float64), mw).astype(np.float32)


def _digits(n_train, n_test, seed, size: int, pad: int):
    ds = load_dataset("digits", seed, n_train, n_test)

    def prep(x):
        x = np.clip(resize_bilinear(x, size), 0.0, 1.0)
        if pad:
            x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        return np.ascontiguousarray(x, dtype=np.float32)

    return prep(ds.x_train), ds.y_train, prep(ds.x_test), ds.y_test


def digits16(n_train: int | None = None, n_test: int | None = None, seed: int = 0):
    """scikit-learn digits resized to 1×16×16 in [0, 1], 10 classes (stratified, seeded
    split; ``n_train + n_test`` <= 1797, default 75/25)."""
    return _digits(n_train, n_test, seed, 16, 0)


def digits28(n_train: int | None = None, n_test: int | None = None, seed: int = 0):
    """scikit-learn digits resized to 20×20 and centred in a 1×28×28 frame (MNIST's
    layout), values in [0, 1], 10 classes; split as :func:`digits16`."""
    return _digits(n_train, n_test, seed, 20, 4)


# ------------------------------------------------------------------ keywords (MFCC-shaped)

_KWS_FRAMES, _KWS_COEFFS = 49, 10
_N_PHONEMES, _WORD_LEN = 8, 3


def _kws_task():
    rng = np.random.default_rng(_TASK_SEED)
    lifter = 1.0 / (1.0 + 0.35 * np.arange(_KWS_COEFFS))           # cepstra shrink with the index
    phonemes = rng.normal(0.0, 1.0, (_N_PHONEMES, _KWS_COEFFS)) * lifter
    phonemes[:, 0] = rng.uniform(1.0, 2.5, _N_PHONEMES)             # c0: energy, always up in speech
    seqs: list[tuple[int, ...]] = []
    while len(seqs) < 10 + 20:                                      # 10 keywords, 20 "unknown" words
        s = tuple(int(v) for v in rng.choice(_N_PHONEMES, _WORD_LEN, replace=False))
        if s not in seqs:
            seqs.append(s)
    return phonemes, np.array(seqs[:10]), np.array(seqs[10:])


def _make_keywords(rng: np.random.Generator, n: int):
    phonemes, words, others = _kws_task()
    y = _balanced(rng, n, len(KEYWORD_CLASSES))
    seq = np.where((y >= 2)[:, None], words[np.clip(y - 2, 0, 9)], others[rng.integers(0, len(others), n)])
    dur = rng.uniform(5.0, 9.0, n)                                  # frames per phoneme (speaking rate)
    onset = rng.uniform(1.0, _KWS_FRAMES - _WORD_LEN * dur - 1.0)
    gain = rng.uniform(0.6, 1.4, n) * (y != 0)                      # silence: no word
    t = np.arange(_KWS_FRAMES, dtype=np.float64)
    centre = onset[:, None] + (np.arange(_WORD_LEN)[None, :] + 0.5) * dur[:, None]     # (n, 3)
    bump = np.exp(-0.5 * ((t[None, None, :] - centre[:, :, None]) / (0.45 * dur[:, None, None])) ** 2)
    x = np.einsum("nkt,nkc->ntc", bump * gain[:, None, None], phonemes[seq])          # (n, 49, 10)
    x = x + rng.normal(0.0, 0.3, (n, 1, _KWS_COEFFS))               # channel colouring (microphone)
    x = x + rng.normal(0.0, 1.0, x.shape) * rng.uniform(0.25, 0.6, n)[:, None, None]
    return x.astype(np.float32)[:, None, :, :], y


def keywords(n_train: int | None = None, n_test: int | None = None, seed: int = 0):
    """12-class MFCC-shaped clips, float32 (N, 1, 49, 10); see :data:`KEYWORD_CLASSES`."""
    return _split(_make_keywords, "keywords", n_train, n_test, seed)


# ------------------------------------------------------------------ coloured shapes 3x32x32

_IMG = 32


def _make_shapes(rng: np.random.Generator, n: int):
    y = _balanced(rng, n, len(SHAPE_CLASSES))
    g = np.arange(_IMG, dtype=np.float64)
    cy = (_IMG - 1) / 2 + rng.uniform(-5.0, 5.0, n)
    cx = (_IMG - 1) / 2 + rng.uniform(-5.0, 5.0, n)
    dy = g[None, :, None] - cy[:, None, None]                      # (n, 32, 1)
    dx = g[None, None, :] - cx[:, None, None]                      # (n, 1, 32)
    r = rng.uniform(5.0, 10.0, n)[:, None, None]
    width = rng.uniform(1.5, 3.0, n)[:, None, None]
    rot = rng.uniform(-0.25, 0.25, n)                              # small rotation of the non-grating shapes
    cr, sr = np.cos(rot)[:, None, None], np.sin(rot)[:, None, None]
    u, v = cr * dx + sr * dy, -sr * dx + cr * dy                   # rotated coordinates
    mask = np.zeros((n, _IMG, _IMG))

    def fill(d):            # signed distance (negative inside) → anti-aliased coverage
        return np.clip(0.5 - d, 0.0, 1.0)

    def stroke(d, w):
        return np.clip(w / 2 + 0.5 - np.abs(d), 0.0, 1.0)

    for c in range(len(SHAPE_CLASSES)):
        i = np.flatnonzero(y == c)
        if i.size == 0:
            continue
        if c < 4:           # grating, orientation c·45° ± 12°, period 4..9 px
            theta = c * np.pi / 4 + rng.uniform(-0.2, 0.2, i.size)
            period = rng.uniform(4.0, 9.0, i.size)
            phase = rng.uniform(0.0, 2 * np.pi, i.size)
            gx = g[None, None, :] * np.cos(theta)[:, None, None] + g[None, :, None] * np.sin(theta)[:, None, None]
            m = 0.5 + 0.5 * np.tanh(2.5 * np.sin(2 * np.pi * gx / period[:, None, None] + phase[:, None, None]))
        else:
            ri, ui, vi, wi = r[i], u[i], v[i], width[i]
            rad = np.sqrt(ui * ui + vi * vi)
            box = np.maximum(np.abs(ui), np.abs(vi))
            if c == 4:
                m = fill(rad - ri)
            elif c == 5:
                m = stroke(rad - ri, wi)
            elif c == 6:
                m = fill(box - ri * 0.85)
            elif c == 7:
                m = stroke(box - ri * 0.85, wi)
            elif c == 8:
                bar_v = np.maximum(np.abs(ui) - wi / 2, np.abs(vi) - ri)
                bar_h = np.maximum(np.abs(vi) - wi / 2, np.abs(ui) - ri)
                m = fill(np.minimum(bar_v, bar_h))
            else:               # checkerboard inside a square window
                period = rng.uniform(5.0, 8.0, i.size)[:, None, None]
                checks = np.sin(np.pi * ui / period) * np.sin(np.pi * vi / period)
                m = (0.5 + 0.5 * np.tanh(4.0 * checks)) * fill(box - ri * 1.1)
        mask[i] = m
    fg = rng.uniform(0.0, 1.0, (n, 3))
    bg = np.clip(1.0 - fg + rng.normal(0.0, 0.15, (n, 3)), 0.0, 1.0)
    img = bg[:, :, None, None] + (fg - bg)[:, :, None, None] * mask[:, None]
    slope = rng.normal(0.0, 0.006, (n, 2))                          # shading gradient across the image
    img = img + (slope[:, 0, None, None] * (g[:, None] - 15.5) + slope[:, 1, None, None] * (g[None, :] - 15.5))[:, None]
    img = img + rng.normal(0.0, 1.0, img.shape) * rng.uniform(0.03, 0.12, n)[:, None, None, None]
    return np.clip(img, 0.0, 1.0).astype(np.float32), y


def shapes(n_train: int | None = None, n_test: int | None = None, seed: int = 0):
    """10-class colour images, float32 (N, 3, 32, 32) in [0, 1]; see :data:`SHAPE_CLASSES`."""
    return _split(_make_shapes, "shapes", n_train, n_test, seed)


# ------------------------------------------------------------------ machine sounds (log-mel frames)

_MELS, _FRAMES = 128, 5
_N_MACHINES = 4


def _mel_hz(n_mels: int = _MELS, f_max: float = 8000.0) -> np.ndarray:
    mel_max = 2595.0 * np.log10(1.0 + f_max / 700.0)
    mel = np.linspace(0.0, mel_max, n_mels + 2)[1:-1]
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def _machine_task():
    rng = np.random.default_rng(_TASK_SEED + 1)
    f0 = rng.uniform(60.0, 240.0, _N_MACHINES)                      # rotation frequency (Hz)
    decay = rng.uniform(0.5, 1.2, _N_MACHINES)                      # harmonic roll-off
    res_hz = rng.uniform(400.0, 6000.0, (_N_MACHINES, 3))           # structural resonances
    res_gain = rng.uniform(0.5, 3.0, (_N_MACHINES, 3))
    return f0, decay, res_hz, res_gain


def _make_machine(rng: np.random.Generator, n: int):
    f0, decay, res_hz, res_gain = _machine_task()
    hz = _mel_hz()
    machine = rng.integers(0, _N_MACHINES, n)
    # slow per-sample variation (load, speed) and per-frame modulation
    speed = f0[machine] * rng.uniform(0.97, 1.03, n)
    level = rng.uniform(0.5, 2.0, n)
    frame_mod = 1.0 + 0.25 * np.sin(rng.uniform(0, 2 * np.pi, n)[:, None] + rng.uniform(0.3, 1.2, n)[:, None]
                                    * np.arange(_FRAMES)[None, :])                  # (n, 5)
    power = 0.05 * (hz[None, None, :] / 100.0) ** -1.0 * np.ones((n, _FRAMES, 1))    # pink background
    for h in range(1, 13):
        fh = h * speed[:, None] * (1.0 + rng.normal(0.0, 0.002, (n, _FRAMES)))           # (n, 5)
        bw = 20.0 + 0.04 * fh                                                        # line width (Hz)
        amp = level[:, None] * frame_mod * h ** (-decay[machine])[:, None]
        power = power + amp[:, :, None] * np.exp(-0.5 * ((hz[None, None, :] - fh[:, :, None]) / bw[:, :, None]) ** 2)
    for k in range(res_hz.shape[1]):
        fc, gk = res_hz[machine, k], res_gain[machine, k]
        bw = 0.08 * fc
        power = power + 0.2 * (gk * level)[:, None, None] * np.exp(
            -0.5 * ((hz[None, None, :] - fc[:, None, None]) / bw[:, None, None]) ** 2)
    logmel = 10.0 * np.log10(power + 1e-6)
    logmel = logmel + rng.normal(0.0, 1.0, logmel.shape)           # 1 dB per-bin noise
    x = (logmel + 10.0) / 10.0                                     # roughly unit scale
    x = x.reshape(n, _FRAMES * _MELS).astype(np.float32)           # frame-major, as the reference's frames
    return x, x.copy()


def machine_sounds(n_train: int | None = None, n_test: int | None = None, seed: int = 0):
    """Normal machine-sound vectors, float32 (N, 640) (5 frames × 128 log-mel bins,
    frame-major); ``y`` is ``x`` (an autoencoder's target)."""
    return _split(_make_machine, "machine_sounds", n_train, n_test, seed)


# ------------------------------------------------------------------ jets

_JET_FEATURES, _JET_COMPONENTS = 16, 3


def _jet_task():
    rng = np.random.default_rng(_TASK_SEED + 2)
    k = len(JET_CLASSES)
    # Class centres close together, components spread around them: a linear model
    # reaches about 73 % on 4000 samples, a 64-32-32 MLP about 91 %.
    centres = rng.normal(0.0, 0.3, (k, _JET_FEATURES))
    means = centres[:, None, :] + rng.normal(0.0, 1.0, (k, _JET_COMPONENTS, _JET_FEATURES))
    mix = rng.normal(0.0, 1.0, (k, _JET_COMPONENTS, _JET_FEATURES, _JET_FEATURES)) * 0.25   # correlations
    mix = mix + np.eye(_JET_FEATURES) * 0.9
    return means, mix


def _make_jets(rng: np.random.Generator, n: int):
    means, mix = _jet_task()
    y = _balanced(rng, n, len(JET_CLASSES))
    comp = rng.integers(0, _JET_COMPONENTS, n)
    z = rng.normal(0.0, 1.0, (n, _JET_FEATURES))
    x = means[y, comp] + np.einsum("nij,nj->ni", mix[y, comp], z)
    return x.astype(np.float32), y


def jets(n_train: int | None = None, n_test: int | None = None, seed: int = 0):
    """16-feature, 5-class jet-like Gaussian mixtures, float32 (N, 16); see :data:`JET_CLASSES`."""
    return _split(_make_jets, "jets", n_train, n_test, seed)


# ------------------------------------------------------------------ detector

def detector(n_train: int | None = None, n_test: int | None = None, seed: int = 0):
    """The sparse-pixel detector images, float32 (N, 1, 63, 63), 3 classes
    (:func:`zeroskip.host.data.detector.load_detector`; defaults 4000 / 1000)."""
    ds = load_detector(seed, n_train, n_test)
    return ds.x_train, ds.y_train, ds.x_test, ds.y_test
