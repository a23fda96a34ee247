"""Run a bundle on a backend and check it: the board-side half of ``zeroskip demo``
(``zeroskip run BUNDLE``). numpy only — runs on the PYNQ-Z2's ARM without torch."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .bundle import Bundle
from .golden import GoldenEngine

CLOCK_MHZ = 100.0


@dataclass
class BundleRun:
    backend: str
    outputs: np.ndarray
    mismatches: int
    max_abs_diff: int
    accuracy_hw: float | None
    cycles_sparse: float  # measured CYCLES − STALL per image
    cycles_dense: float
    cycles_predicted: float
    cycles_dense_predicted: float
    macs_sparse: float
    n_samples: int
    n_dense_samples: int
    dense_mismatches: int
    timings: dict = field(default_factory=dict)
    sim: dict = field(default_factory=dict)


def _percentiles(xs) -> dict:
    a = np.asarray(xs, float)
    if a.size == 0:
        return {}
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}


def _n(packed) -> int:
    return packed.shape[0] if isinstance(packed, np.ndarray) else len(packed)


def _slice(packed, n):
    return packed[:n]


def predicted_cycles(bundle: Bundle, packed, dense: bool = False) -> float:
    """Golden-model CYCLES − STALL per image for exactly these images (data-dependent in
    sparse-pixel mode, constant otherwise)."""
    eng = GoldenEngine(bundle.hw)
    eng.load(bundle.dense_beats if dense else bundle.program_beats)
    eng.run_images(packed)
    return sum(eng.image_cycles) / len(eng.image_cycles)


def run_bundle(bundle: Bundle, backend: str = "auto", *, simulator: str = "verilator", batch_size: int = 32,
               n_samples: int | None = None, dense_samples: int = 8, quiet: bool = False,
               backend_obj=None) -> BundleRun:
    """Load the bundle's program, run its test inputs (sparse program) and a few with the
    dense-mode program, compare with the expected integer outputs, and collect counters
    and host timings. ``backend_obj`` reuses an already opened backend."""
    from .driver import ZeroSkip, open_backend

    n = bundle.inputs.shape[0] if n_samples is None else min(int(n_samples), bundle.inputs.shape[0])
    t0 = time.perf_counter()
    be = backend_obj or open_backend(backend, hw=bundle.hw, simulator=simulator, quiet=quiet)
    t_open = time.perf_counter() - t0
    try:
        drv = ZeroSkip(be)
        packed = bundle.packed_inputs(bundle.inputs[:n])
        t0 = time.perf_counter()
        drv.load_program(bundle.program_beats, manifest_hw=bundle.hw)
        t_load = time.perf_counter() - t0
        drv.run(_slice(packed, min(n, batch_size)), batch_size=batch_size)  # warm-up, not reported
        t0 = time.perf_counter()
        res = drv.run(packed, batch_size=batch_size)
        wall = time.perf_counter() - t0
        exp = bundle.expected[:n]
        diff = np.abs(res.outputs.astype(np.int64) - exp.astype(np.int64))
        acc = None
        if bundle.labels is not None:
            acc = float(np.mean(res.outputs.argmax(axis=1) == bundle.labels[:n]))
        nd = min(n, dense_samples)
        drv.load_program(bundle.dense_beats, manifest_hw=bundle.hw)
        dres = drv.run(_slice(packed, nd), batch_size=batch_size)
        dmis = int(np.count_nonzero(dres.outputs != exp[:nd]))
        drv.load_program(bundle.program_beats, manifest_hw=bundle.hw)  # leave the sparse program loaded
        imgs = np.asarray(res.timings["images"], float)
        timings = {"open_backend_s": t_open, "load_program_s": t_load, "run_wall_s": wall,
                   "batch_size": batch_size, "batches": int(imgs.size)}
        for k in ("pack", "copy", "dma_compute", "unpack"):
            per_img = np.asarray(res.timings[k], float) / imgs
            timings[f"{k}_us_per_image"] = {q: v * 1e6 for q, v in _percentiles(per_img).items()}
        per_batch = sum(np.asarray(res.timings[k], float) for k in ("pack", "copy", "dma_compute", "unpack"))
        timings["batch_ms"] = {q: v * 1e3 for q, v in _percentiles(per_batch).items()}
        timings["per_image_us"] = {q: v * 1e6 for q, v in _percentiles(per_batch / imgs).items()}
        sim = {}
        if getattr(be, "kind", backend) == "sim":
            # in simulation the wall clock is simulation speed, never latency
            sim = {"inferences_per_s": n / wall, "sim_cycles_per_s": float(np.sum(res.timings["cycles_total"])) / wall}
            timings = {k: v for k, v in timings.items() if not (k.endswith("per_image") or k.startswith("batch_ms")
                                                                 or k == "per_image_us")}
            timings["note"] = "simulation: wall-clock figures are simulation speed, not latency"
        return BundleRun(
            backend=getattr(be, "kind", backend), outputs=res.outputs, mismatches=int(np.count_nonzero(diff)),
            max_abs_diff=int(diff.max()) if diff.size else 0, accuracy_hw=acc,
            cycles_sparse=res.total_cycles / n, cycles_dense=dres.total_cycles / nd,
            cycles_predicted=predicted_cycles(bundle, packed),
            cycles_dense_predicted=predicted_cycles(bundle, _slice(packed, nd), dense=True),
            macs_sparse=float(np.sum(res.macs)) / n, n_samples=n, n_dense_samples=nd, dense_mismatches=dmis,
            timings=timings, sim=sim)
    finally:
        if backend_obj is None and hasattr(be, "close"):
            be.close()


def summary_dict(bundle: Bundle, run: BundleRun, clock_mhz: float = CLOCK_MHZ) -> dict:
    """The flat ``summary.json`` of a run (per inference: MACs, cycles, latency)."""
    model = bundle.manifest.get("model", {})
    pred = bundle.manifest.get("predicted", {})
    lanes = bundle.hw.lanes
    cyc = run.cycles_sparse
    return {
        "backend": run.backend,
        "dataset": model.get("dataset"),
        "lanes": lanes,
        "clock_mhz": clock_mhz,
        "sparsity": model.get("sparsity"),
        "n_samples": run.n_samples,
        "accuracy_float": model.get("accuracy_float"),
        "accuracy_int8": model.get("accuracy_int8"),
        "accuracy_hw": run.accuracy_hw,
        "mismatches": run.mismatches,
        "max_abs_diff": run.max_abs_diff,
        "macs_dense": pred.get("macs_dense"),
        "macs_sparse": run.macs_sparse,
        "cycles_dense": run.cycles_dense,
        "cycles_sparse": cyc,
        "cycles_predicted": run.cycles_predicted,
        "mac_utilization": run.macs_sparse / (lanes * cyc) if cyc else None,
        "speedup": run.cycles_dense / cyc if cyc else None,
        "latency_us": cyc / clock_mhz,
        "weight_bytes_dense": pred.get("weight_bytes_dense"),
        "weight_bytes_compressed": pred.get("weight_bytes_compressed"),
    }
