"""Simulation-backend figures for ``zeroskip bench``, measured in the run on the real RTL:
the cold simulator build (an empty cache), the start of the simulation, and TinyCNN
throughput at batch 1 and 32 — inferences per wall second and simulated clock cycles per
wall second (the harness's cycle counter, DMA and register traffic included), with the
outputs checked bit-exact against the golden model; then the same for the native
backend (:func:`zeroskip.driver.sim.native.bench`: driver, bare compiled model, ratio,
sharded workers). Wall-clock figures depend on what
else the machine runs, so the load average is recorded with them."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time

import numpy as np


@contextlib.contextmanager
def _cache_dir(path: str):
    old = os.environ.get("ZEROSKIP_CACHE")
    os.environ["ZEROSKIP_CACHE"] = path
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("ZEROSKIP_CACHE", None)
        else:
            os.environ["ZEROSKIP_CACHE"] = old


def _throughput(drv, sim, packed, expected, batch_size: int) -> dict:
    n = packed.shape[0]
    drv.run(packed[:batch_size], batch_size=batch_size)          # warm-up
    c0 = sim.cycle()
    t = time.perf_counter()
    res = drv.run(packed, batch_size=batch_size)
    wall = time.perf_counter() - t
    c1 = sim.cycle()
    assert np.array_equal(res.outputs, expected[:n]), "simulation differs from the golden model"
    return {"images": n, "batch_size": batch_size, "wall_s": wall, "inferences_per_s": n / wall,
            "sim_cycles_per_s": (c1 - c0) / wall, "cycles_per_image": res.total_cycles / n}


def sim_figures(tr, lanes_list, args) -> dict:
    from zeroskip.driver import ZeroSkip, open_backend
    from zeroskip.driver.backends.sim import build_sim, sim_process
    from zeroskip.driver.bundle import pack_inputs
    from zeroskip.driver.golden import GoldenEngine
    from zeroskip.driver.program import HwConfig, encode_program

    from zeroskip.host.compiler.lowering import compile_model

    lanes = 8 if 8 in lanes_list else lanes_list[0]
    hw = HwConfig(lanes=lanes)
    prog = compile_model(tr.qmodel, hw)
    beats = encode_program(prog)
    packed = pack_inputs(tr.x_test_int8, prog.meta["input_layout"])
    gold = GoldenEngine(hw)
    gold.load(beats)
    expected, _ = gold.run_images(packed)
    out: dict = {"lanes": lanes, "simulator": args.simulator, "load_avg_1min": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="zs-cold-") as tmp:
        with _cache_dir(tmp):                    # cold: nothing cached
            t = time.perf_counter()
            bdir = build_sim(hw, args.simulator, quiet=args.quiet)
            out["cold_build_s"] = time.perf_counter() - t
        t = time.perf_counter()
        be = open_backend("sim", hw=hw, simulator=args.simulator, build_dir=bdir)
        out["start_s"] = time.perf_counter() - t
        try:
            drv = ZeroSkip(be)
            drv.load_program(beats)
            sim = sim_process(be)
            out["batch1"] = _throughput(drv, sim, packed[:32], expected, 1)
            out["batch32"] = _throughput(drv, sim, packed, expected, 32)
        finally:
            be.close()
    print(f"\nsimulation backend ({args.simulator}, LANES={lanes}, TinyCNN, outputs bit-exact with the golden "
          f"model; load average {out['load_avg_1min']:.1f} on {os.cpu_count()} CPUs):")
    print(f"  cold build {out['cold_build_s']:.0f} s (empty cache), start {out['start_s']:.1f} s")
    for key in ("batch1", "batch32"):
        b = out[key]
        print(f"  batch {b['batch_size']:>2}: {b['inferences_per_s']:.0f} inferences/s over {b['images']} images, "
              f"{b['sim_cycles_per_s'] / 1e6:.2f} M simulated cycles/s ({b['cycles_per_image']:.0f} cycles per image)")
    # the same RTL Verilated into a library clocked from C++ (the "native" backend): the
    # driver at batch 1 and 32, the bare compiled model and their ratio, sharded workers
    from zeroskip.driver.sim import native

    out["native"] = native.bench(native.tinycnn_workload(256, hw), quiet=args.quiet)
    print(native.format_bench(out["native"]))
    return out
