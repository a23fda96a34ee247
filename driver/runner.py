"""Run a bundle on a backend and check it: the board-side half of ``zeroskip demo``
(``zeroskip run BUNDLE``). numpy only — runs on the PYNQ-Z2's ARM without torch."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .bundle import Bundle
from .golden import image_timing

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
    cycles_predicted: int
    cycles_dense_predicted: int
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


def run_bundle(bundle: Bundle, backend: str = "auto", *, simulator: str = "verilator", batch_size: int = 32,
               n_samples: int | None = None, dense_samples: int = 8, quiet: bool = False,
               backend_obj=None) -> BundleRun:
    """Load the bundle's program, run its test inputs (sparse program) and a few with the
    dense-mode program, compare with the expected integer outputs, and collect counters
    and host timings. ``backend_obj`` reuses an already opened backend."""
    from .driver import ZeroSkip, open_backend

    n = bundle.inputs.shape[0] if n_samples is None else min(int(n_samples), bundle.inputs.shape[0])
    be = backend_obj or open_backend(backend, hw=bundle.hw, simulator=simulator, quiet=quiet)
    try:
        drv = ZeroSkip(be)
        packed = bundle.packed_inputs(bundle.inputs[:n])
        t0 = time.perf_counter()
        drv.load_program(bundle.program_beats)
        t_load = time.perf_counter() - t0
        # warm-up batch (not timed), then the measured runs
        drv.run(packed[: min(n, batch_size)], batch_size=batch_size)
        res = drv.run(packed, batch_size=batch_size)
        exp = bundle.expected[:n]
        diff = np.abs(res.outputs.astype(np.int64) - exp.astype(np.int64))
        acc = None
        if bundle.labels is not None:
            acc = float(np.mean(res.outputs.argmax(axis=1) == bundle.labels[:n]))
        nd = min(n, dense_samples)
        drv.load_program(bundle.dense_beats)
        dres = drv.run(packed[:nd], batch_size=batch_size)
        dmis = int(np.count_nonzero(dres.outputs != exp[:nd]))
        drv.load_program(bundle.program_beats)  # leave the sparse program loaded
        timings = dict(res.timings)
        timings["load_program_s"] = t_load
        return BundleRun(
            backend=getattr(be, "kind", backend), outputs=res.outputs, mismatches=int(np.count_nonzero(diff)),
            max_abs_diff=int(diff.max()) if diff.size else 0, accuracy_hw=acc,
            cycles_sparse=res.cycles / n, cycles_dense=dres.cycles / nd,
            cycles_predicted=image_timing(bundle.program)["total"],
            cycles_dense_predicted=image_timing(bundle.dense_program)["total"],
            macs_sparse=res.macs / n, n_samples=n, n_dense_samples=nd, dense_mismatches=dmis, timings=timings,
            sim=dict(getattr(be, "stats", dict)()))
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
