"""Run a bundle on a backend and check it: the board-side half of ``zeroskip demo``
(``zeroskip run BUNDLE``). numpy only — runs on the PYNQ-Z2's ARM without torch."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .bundle import Bundle
from .driver import STEPS
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


LATENCY_IMAGES = 16   # batch-1 runs for the end-to-end latency figure


def step_timings(res) -> dict:
    """Per-image time of each driver step (p50/p99/mean over batches, us), the batch
    wall time (ms) and the share of the run's measured wall clock outside the steps."""
    imgs = np.asarray(res.timings["images"], float)
    out: dict = {}
    for k in STEPS:
        per_img = np.asarray(res.timings[k], float) / imgs
        out[f"{k}_us_per_image"] = {q: v * 1e6 for q, v in _percentiles(per_img).items()}
    per_batch = sum(np.asarray(res.timings[k], float) for k in STEPS)
    out["batch_ms"] = {q: v * 1e3 for q, v in _percentiles(per_batch).items()}
    out["per_image_us"] = {q: v * 1e6 for q, v in _percentiles(per_batch / imgs).items()}
    tot = res.totals()
    out["run_wall_ms"] = tot["wall"] * 1e3
    out["outside_steps_ms"] = tot["other"] * 1e3
    return out


def predicted_cycles(bundle: Bundle, packed, dense: bool = False) -> float:
    """Golden-model CYCLES − STALL per image for exactly these images (data-dependent in
    sparse-pixel mode, constant otherwise). A bundle without a dense-mode program (it does
    not fit the overlay) gives the export's prediction for it."""
    if dense and bundle.dense_beats is None:
        return float(bundle.manifest["predicted"]["cycles_dense"])
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
    from .backends import open_backend
    from .driver import ZeroSkip

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
        nd = min(n, dense_samples) if bundle.dense_beats is not None else 0
        if nd:
            drv.load_program(bundle.dense_beats, manifest_hw=bundle.hw)
            dres = drv.run(_slice(packed, nd), batch_size=batch_size)
            dmis = int(np.count_nonzero(dres.outputs != exp[:nd]))
            drv.load_program(bundle.program_beats, manifest_hw=bundle.hw)  # leave the sparse program loaded
            cycles_dense = dres.total_cycles / nd
        else:   # no dense-mode program in the bundle: its cycles are the export's prediction
            dmis = 0
            cycles_dense = predicted_cycles(bundle, packed, dense=True)
        timings = {"open_backend_s": t_open, "load_program_s": t_load, "run_wall_s": wall,
                   "batch_size": batch_size, "batches": int(len(res.cycles))}
        timings.update(step_timings(res))
        # batch-1 end-to-end latency: register write to the last result in host memory
        lat = drv.run(_slice(packed, min(n, LATENCY_IMAGES)), batch_size=1)
        timings["latency_e2e_us"] = {q: v * 1e6 for q, v in _percentiles(lat.batch_latency_s).items()}
        sim = {}
        if getattr(be, "kind", backend) != "board":
            # off the board the wall clock is simulation (or model) speed, never latency
            if getattr(be, "kind", backend) == "sim":
                sim = {"inferences_per_s": n / wall,
                       "sim_cycles_per_s": float(np.sum(res.timings["cycles_total"])) / wall}
            timings["note"] = (f"{getattr(be, 'kind', backend)} backend: wall-clock figures are the speed of the "
                               "simulation or model, not latency; cycles are exact")
        return BundleRun(
            backend=getattr(be, "kind", backend), outputs=res.outputs, mismatches=int(np.count_nonzero(diff)),
            max_abs_diff=int(diff.max()) if diff.size else 0, accuracy_hw=acc,
            cycles_sparse=res.total_cycles / n, cycles_dense=cycles_dense,
            cycles_predicted=predicted_cycles(bundle, packed),
            cycles_dense_predicted=predicted_cycles(bundle, _slice(packed, max(nd, 1)), dense=True),
            macs_sparse=float(np.sum(res.macs)) / n, n_samples=n, n_dense_samples=nd, dense_mismatches=dmis,
            timings=timings, sim=sim)
    finally:
        if backend_obj is None and hasattr(be, "close"):
            be.close()


def _num(x):
    """An integral value as int (cycles and MACs per image are averages: integral unless
    the work is data-dependent, as in sparse-pixel mode)."""
    if x is None:
        return None
    xf = float(x)
    return int(round(xf)) if xf.is_integer() else xf


def summary_dict(bundle: Bundle, run: BundleRun, clock_mhz: float = CLOCK_MHZ) -> dict:
    """The flat ``summary.json`` of a run (per inference: MACs, cycles, latency)."""
    model = bundle.manifest.get("model", {})
    pred = bundle.manifest.get("predicted", {})
    lanes = bundle.hw.lanes
    cyc = run.cycles_sparse
    on_board = run.backend == "board"
    lat = run.timings.get("latency_e2e_us", {})
    per_img = run.timings.get("per_image_us", {})
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
        "macs_sparse": _num(run.macs_sparse),
        "cycles_dense": _num(run.cycles_dense),
        "cycles_sparse": _num(cyc),
        "cycles_predicted": _num(run.cycles_predicted),
        "mac_utilization": run.macs_sparse / (lanes * cyc) if cyc else None,
        # the speedup a user means: for a sparse-pixel model the same network computed
        # densely over the whole grid with every weight (golden prediction); otherwise the
        # same program with every weight as an entry. speedup_weights: the latter always.
        "speedup": (pred["cycles_dense_grid"] if "cycles_dense_grid" in pred else run.cycles_dense) / cyc
        if cyc else None,
        "speedup_weights": run.cycles_dense / cyc if cyc else None,
        "cycles_dense_grid": pred.get("cycles_dense_grid"),
        # the engine's own time per image (CYCLES - STALL at the clock), on every backend
        "compute_latency_us": cyc / clock_mhz,
        # measured on the board only: register write to the last result in host memory at
        # batch 1 (median), and the wall time per image at the run's batch size
        "latency_e2e_us": lat.get("p50") if on_board else None,
        "per_image_us_at_batch": per_img.get("p50") if on_board else None,
        "batch_size": run.timings.get("batch_size"),
        "weight_bytes_dense": pred.get("weight_bytes_dense"),
        "weight_bytes_compressed": pred.get("weight_bytes_compressed"),
    }
