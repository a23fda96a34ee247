"""Simulation-backend figures for ``zeroskip bench``: cold build time, batched
inferences per second and simulated cycles per wall second on the real RTL."""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np


def sim_figures(tr, lanes_list, args) -> dict:
    from zeroskip.driver import ZeroSkip, open_backend
    from zeroskip.driver.bundle import pack_inputs
    from zeroskip.driver.golden import GoldenEngine
    from zeroskip.driver.program import HwConfig, encode_program

    from .compiler import compile_model

    lanes = 8 if 8 in lanes_list else lanes_list[0]
    hw = HwConfig(lanes=lanes)
    prog = compile_model(tr.qmodel, hw)
    beats = encode_program(prog)
    packed = pack_inputs(tr.x_test_int8[:256], prog.meta["input_layout"])
    out: dict = {"lanes": lanes, "simulator": args.simulator}
    # cold build: a fresh cache directory, timed around opening the backend
    with tempfile.TemporaryDirectory(prefix="zs-cold-") as tmp:
        old = os.environ.get("ZEROSKIP_CACHE")
        os.environ["ZEROSKIP_CACHE"] = tmp
        try:
            t = time.perf_counter()
            be = open_backend("sim", hw=hw, simulator=args.simulator)
            out["cold_open_s"] = time.perf_counter() - t
            be.close()
        finally:
            if old is None:
                os.environ.pop("ZEROSKIP_CACHE", None)
            else:
                os.environ["ZEROSKIP_CACHE"] = old
    t = time.perf_counter()
    be = open_backend("sim", hw=hw, simulator=args.simulator)
    out["warm_open_s"] = time.perf_counter() - t
    gold = GoldenEngine(hw)
    gold.load(beats)
    expected, _ = gold.run_images(packed)
    try:
        drv = ZeroSkip(be)
        drv.load_program(beats)
        for bs in (1, 32):
            n = 32 if bs == 1 else 256
            drv.run(packed[:bs], batch_size=bs)  # warm-up
            t = time.perf_counter()
            res = drv.run(packed[:n], batch_size=bs)
            wall = time.perf_counter() - t
            assert np.array_equal(res.outputs, expected[:n]), "simulation differs from the golden model"
            out[f"batch{bs}"] = {"images": n, "inferences_per_s": n / wall,
                                 "sim_cycles_per_s": float(np.sum(res.timings["cycles_total"])) / wall,
                                 "cycles_per_image": res.total_cycles / n}
    finally:
        be.close()
    print(f"\nsimulation backend ({args.simulator}, LANES={lanes}, TinyCNN, outputs bit-exact with the golden model):")
    print(f"  cold build + start {out['cold_open_s']:.1f} s, warm start {out['warm_open_s']:.1f} s")
    for bs in (1, 32):
        b = out[f"batch{bs}"]
        print(f"  batch {bs:>2}: {b['inferences_per_s']:.0f} inferences/s, {b['sim_cycles_per_s'] / 1e3:.0f}k simulated "
              f"cycles/s ({b['cycles_per_image']:.0f} cycles per image)")
    return out
