"""``zeroskip bench``: performance figures, each measured in one run as ratios.

1. Engine efficiency for TinyCNN (synthetic set, the configured sparsity): per layer and
   in total — MACs dense/sparse, cycles dense/sparse (speedup on the same hardware), MAC
   utilisation, latency at 100 MHz — for every LANES value, from the golden model (which
   the RTL tests hold cycle-exact) and, with a simulator, measured on the RTL.
2. Simulation backend: cold build time, inferences/s batched, simulated cycles per second.
3. Yosys resources against the xc7z020.
Results also go to ``outputs/bench.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from zeroskip.driver.golden import image_timing
from zeroskip.driver.program import HwConfig

CLOCK_MHZ = 100.0


def _table(rows: list[list], head: list[str]) -> str:
    cols = list(zip(*([head] + [[str(c) for c in r] for r in rows])))
    widths = [max(len(c) for c in col) for col in cols]
    line = lambda r: "  ".join(str(c).rjust(w) for c, w in zip(r, widths))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def engine_figures(qmodel, lanes: int) -> dict:
    from .compiler import compile_model, weight_bytes

    hw = HwConfig(lanes=lanes)
    sp, de = compile_model(qmodel, hw), compile_model(qmodel, hw, dense=True)
    ts, td = image_timing(sp), image_timing(de)
    layers = []
    for layer, lps, a, b in zip(qmodel.layers, sp.layers, ts["layers"], td["layers"]):
        macs_dense = int(layer.weight.size) * lps.desc.h_it * lps.desc.w_valid
        layers.append({"name": layer.name, "P": lps.desc.P, "Q": lps.desc.Q, "macs_dense": macs_dense,
                       "macs_sparse": a.macs, "cycles_sparse": a.total, "cycles_dense": b.total,
                       "utilization": a.macs / (lanes * a.total), "speedup": b.total / a.total,
                       "ideal_speedup": macs_dense / max(1, a.macs)})
    macs_dense = sum(lay["macs_dense"] for lay in layers)
    wd, wc = weight_bytes(qmodel, sp)
    return {"lanes": lanes, "layers": layers, "cycles_sparse": ts["total"], "cycles_dense": td["total"],
            "macs_sparse": ts["macs"], "macs_dense": macs_dense, "utilization": ts["macs"] / (lanes * ts["total"]),
            "speedup": td["total"] / ts["total"], "mac_ratio": macs_dense / ts["macs"],
            "speedup_over_mac_ratio": (td["total"] / ts["total"]) / (macs_dense / ts["macs"]),
            "latency_us": ts["total"] / CLOCK_MHZ, "latency_dense_us": td["total"] / CLOCK_MHZ,
            "weight_bytes_dense": wd, "weight_bytes_compressed": wc, "weight_ratio": wc / wd}


def print_engine(f: dict) -> None:
    print(f"\nTinyCNN, LANES={f['lanes']}: cycles sparse {f['cycles_sparse']} / dense {f['cycles_dense']} "
          f"-> speedup {f['speedup']:.2f}x (MAC ratio {f['mac_ratio']:.2f}x, kept {f['speedup_over_mac_ratio']:.2f}); "
          f"MAC utilisation {f['utilization']:.3f}; latency {f['latency_us']:.2f} us at {CLOCK_MHZ:g} MHz "
          f"(dense mode {f['latency_dense_us']:.2f} us); weights {f['weight_bytes_compressed']}/"
          f"{f['weight_bytes_dense']} B = {f['weight_ratio']:.3f}")
    rows = [[lay["name"], f"{lay['P']}x{lay['Q']}", lay["macs_dense"], lay["macs_sparse"], lay["cycles_dense"],
             lay["cycles_sparse"], f"{lay['speedup']:.2f}", f"{lay['ideal_speedup']:.2f}", f"{lay['utilization']:.3f}"]
            for lay in f["layers"]]
    print(_table(rows, ["layer", "PxQ", "MACs dense", "MACs sparse", "cyc dense", "cyc sparse", "speedup",
                        "MAC ratio", "util"]))


def run_bench(args) -> dict:
    from .pipeline import TrainConfig, get_trained

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {}
    cfg = TrainConfig(dataset=args.dataset, sparsity=args.sparsity, seed=args.seed)
    tr = get_trained(cfg, quiet=args.quiet)
    print(f"model: TinyCNN on {args.dataset}, weight sparsity {tr.sparsity:.3f}, accuracy float "
          f"{tr.accuracy_float:.4f} / int8 {tr.accuracy_int8:.4f}")
    lanes_list = [int(x) for x in str(args.lanes).split(",")]
    result["engine"] = []
    for lanes in lanes_list:
        f = engine_figures(tr.qmodel, lanes)
        result["engine"].append(f)
        print_engine(f)
    if not args.no_sim and args.backend in ("auto", "sim"):
        from .bench_sim import sim_figures

        result["sim"] = sim_figures(tr, lanes_list, args)
    if not args.no_synth:
        from .resources import resource_table

        t = time.perf_counter()
        res = resource_table(lanes_list)
        result["resources"] = res
        print(f"\nYosys synth_xilinx resources ({time.perf_counter() - t:.0f} s):")
        print(res["text"] if isinstance(res, dict) and "text" in res else res)
    (out / "bench.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwritten: {out / 'bench.json'}")
    return result
