"""``Model(bundle).predict(x)``: a converted model on new float data, on any backend
(numpy only: runs on the board without torch).

    from zeroskip.driver import Model
    m = Model("bundle_dir", backend="auto")    # "model" | "sim" | "board" | "auto"
    y = m.predict(x_float)                     # (N, *input shape) float -> (N, n_out) float
    m.last                                     # cycles and wall time of the last call

``predict`` does what a user would otherwise write by hand: checks the input, quantises
it with the bundle's input scale, packs it (padding, layout, the sparse-pixel reduce),
runs it in batches the DMA allows, dequantises the int32 outputs with the bundle's output
scale and applies the source model's trailing Softmax / LogSoftmax.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .bundle import Bundle, load_bundle, pack_inputs
from .errors import BundleError


def apply_head(y: np.ndarray, head: str | None) -> np.ndarray:
    """A trailing Softmax / LogSoftmax over the classes (axis 1), in float64."""
    if head is None:
        return y
    z = y - y.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1, keepdims=True))
    if head == "softmax":
        return np.exp(z - lse)
    if head == "log_softmax":
        return z - lse
    raise BundleError(f"unknown output head {head!r} in the bundle manifest")


@dataclass(frozen=True)
class Timing:
    """The last ``predict`` call: images, engine cycles per image (CYCLES − STALL, exact
    on every backend), and wall-clock seconds split into ``pack`` (quantise + pack on the
    host), ``run`` (transfers and compute: the driver's run) and ``unpack`` (dequantise,
    head). Off the board the wall clock is simulation speed, not latency."""

    images: int
    cycles_per_image: float
    clock_hz: float
    pack_s: float
    run_s: float
    unpack_s: float
    backend: str

    @property
    def wall_s(self) -> float:
        return self.pack_s + self.run_s + self.unpack_s

    @property
    def compute_latency_us(self) -> float:
        return self.cycles_per_image / self.clock_hz * 1e6

    def __str__(self) -> str:
        return (f"{self.images} inferences on {self.backend}: {self.cycles_per_image:.0f} cycles each "
                f"({self.compute_latency_us:.1f} us at {self.clock_hz / 1e6:g} MHz); wall "
                f"{self.wall_s * 1e3:.1f} ms = pack {self.pack_s * 1e3:.1f} + run {self.run_s * 1e3:.1f} + "
                f"unpack {self.unpack_s * 1e3:.1f} ms ({self.wall_s / max(self.images, 1) * 1e6:.0f} us per inference)")


class Model:
    """A bundle loaded onto a backend, ready to predict. Use as a context manager (or call
    :meth:`close`) to release the backend."""

    def __init__(self, bundle: str | Path | Bundle, backend: str = "auto", *, simulator: str = "verilator",
                 batch_size: int | None = None, timeout: float | None = None, quiet: bool = True, **backend_kw):
        from .backends import open_backend
        from .driver import ZeroSkip

        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        meta = self.bundle.manifest.get("model", {})
        try:
            self.input_scale = float(meta["input_scale"])
            self.output_scale = float(meta.get("output_scale", 1.0))
        except (KeyError, TypeError, ValueError):
            raise BundleError(f"{self.bundle.path}: the manifest's model has no input_scale; re-export the "
                              "bundle") from None
        self.head = meta.get("head")
        lay = self.bundle.input_layout
        self.engine_shape = tuple(int(s) for s in lay["shape"])
        self.input_shape = tuple(int(s) for s in meta.get("input_shape", self.engine_shape))
        if int(np.prod(self.input_shape)) != int(np.prod(self.engine_shape)):
            raise BundleError(f"{self.bundle.path}: input_shape {self.input_shape} does not match the engine input "
                              f"{self.engine_shape}; re-export the bundle")
        self.batch_size = batch_size
        self._backend = open_backend(backend, hw=self.bundle.hw, simulator=simulator, quiet=quiet, **backend_kw)
        self.backend = getattr(self._backend, "kind", backend)
        try:
            self._drv = ZeroSkip(self._backend, timeout=timeout)
            self._drv.load_program(self.bundle.program_beats, manifest_hw=self.bundle.hw)
        except BaseException:
            self.close()
            raise
        self.last: Timing | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        be = getattr(self, "_backend", None)
        if be is not None and hasattr(be, "close"):
            be.close()
        self._backend = None

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Model({self.bundle.manifest.get('model', {}).get('name', '?')!r}, backend={self.backend!r}, "
                f"input {self.input_shape}, {self.bundle.n_out} outputs)")

    # -- data -------------------------------------------------------------------------
    def _check(self, x) -> np.ndarray:
        a = np.asarray(x)
        if a.dtype.kind not in "fiub":
            raise TypeError(f"inputs must be a numeric array, got dtype {a.dtype}")
        if tuple(a.shape) == self.input_shape:
            a = a[None]
        if a.ndim != len(self.input_shape) + 1 or tuple(a.shape[1:]) != self.input_shape:
            raise ValueError(f"inputs of shape {tuple(a.shape)}; this model takes (N, *{self.input_shape}) "
                             f"(or one sample of shape {self.input_shape})")
        if a.shape[0] == 0:
            raise ValueError("no inputs: pass at least one sample")
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError("inputs contain NaN or infinite values")
        return a

    def quantize(self, x) -> np.ndarray:
        """Float inputs → the engine's int8 images (N, C, H, W): ``clip(rint(x / s), -128, 127)``."""
        a = self._check(x)
        q = np.clip(np.rint(a / self.input_scale), -128, 127).astype(np.int8)
        return q.reshape(q.shape[0], *self.engine_shape)

    def predict_int(self, x_int8) -> np.ndarray:
        """int8 engine images (N, C, H, W) → int32 outputs (N, n_out) from the backend."""
        return self._run([np.asarray(x_int8)], pack_s=0.0)

    def _run(self, chunks, pack_s: float) -> np.ndarray:
        """Pack and run int8 images chunk by chunk; ``self.last`` times the whole call
        (``pack_s``: host time already spent before it)."""
        outs, cycles, run_s, n, clock = [], 0, 0.0, 0, 100e6
        for xi in chunks:
            if xi.dtype != np.int8 or tuple(xi.shape[1:]) != self.engine_shape:
                raise ValueError(f"engine images must be int8 (N, *{self.engine_shape}), got {xi.dtype} {xi.shape}")
            t0 = time.perf_counter()
            packed = pack_inputs(xi, self.bundle.input_layout)
            t1 = time.perf_counter()
            res = self._drv.run(packed, batch_size=self.batch_size)
            pack_s += t1 - t0
            run_s += time.perf_counter() - t1
            outs.append(res.outputs)
            cycles += res.total_cycles
            n += res.n_images
            clock = res.clock_hz
        self.last = Timing(images=n, cycles_per_image=cycles / n, clock_hz=clock, pack_s=pack_s, run_s=run_s,
                           unpack_s=0.0, backend=str(self.backend))
        return np.concatenate(outs)

    def predict(self, x, *, progress: bool = False) -> np.ndarray:
        """Float inputs (N, *input shape) → float outputs (N, n_out): dequantised, the
        source model's trailing Softmax / LogSoftmax applied. ``progress`` shows a bar
        (tqdm, when installed) over chunks of inputs."""
        t0 = time.perf_counter()
        xi = self.quantize(x)
        t_pack = time.perf_counter() - t0
        chunks = [xi]
        if progress and xi.shape[0] > 256:
            chunks = [xi[i:i + 256] for i in range(0, xi.shape[0], 256)]
            try:
                from tqdm import tqdm
                chunks = tqdm(chunks, unit="chunk", desc="predict")
            except ImportError:
                pass
        out = self._run(chunks, t_pack)
        t0 = time.perf_counter()
        y = apply_head(out.astype(np.float64) * self.output_scale, self.head)
        self.last = replace(self.last, unpack_s=time.perf_counter() - t0)
        return y

    def verify(self) -> dict:
        """Run the bundle's own test inputs and compare with its expected integer outputs."""
        out = self.predict_int(self.bundle.inputs)
        mism = int(np.count_nonzero(out != self.bundle.expected))
        return {"images": int(out.shape[0]), "mismatches": mism, "bit_exact": mism == 0,
                "cycles_per_image": self.last.cycles_per_image}
