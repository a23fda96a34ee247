"""``zeroskip bench``: performance figures, each measured in one run as ratios.

1. Engine efficiency for TinyCNN (synthetic set, the configured sparsity): per layer and
   in total — MACs dense/sparse, cycles dense/sparse (speedup on the same hardware), MAC
   utilisation, latency at 100 MHz — for every LANES value, from the golden model (which
   the RTL tests hold cycle-exact) and, with a simulator, measured on the RTL.
2. Simulation backend: cold build time, inferences/s batched, simulated cycles per second.
3. Yosys resources against the xc7z020.
4. The performance targets (host/bench/targets.py): each figure against its target, with
   the measured cause where it is not met.
Results also go to ``outputs/bench.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from zeroskip.driver.golden import image_timing
from zeroskip.driver.program import HwConfig

CLOCK_MHZ = 100.0


def _table(rows: list[list], head: list[str]) -> str:
    cols = list(zip(*([head] + [[str(c) for c in r] for r in rows])))
    widths = [max(len(c) for c in col) for col in cols]
    line = lambda r: "  ".join(str(c).rjust(w) for c, w in zip(r, widths))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


# the parts of a layer's LANES × cycles (lane_budget), in table order
LANE_PARTS = ("useful", "idle_pixels", "fillers", "row_ends", "conflict_groups", "overhead")
LANE_PART_HEADS = ("useful", "idle px", "fillers", "row ends", "conflict ends", "setup/fill")


def lane_budget(lp, lt, lanes: int) -> dict:
    """Where a dense-tile layer's ``LANES × cycles`` lane-cycles go: useful MACs; lanes of
    invalid pixels (a row rounded up to whole tiles of P); and per valid pixel, the slots
    of zero-weight filler entries (index runs longer than a code), the empty slots of a
    row's last group (its entries rounded up to whole groups of Q), the slots of the
    groups a row has beyond that minimum (groups ended early because of a bank conflict);
    and the layer's SETUP, clear and FILL cycles. The parts add up to ``LANES × total``."""
    from zeroskip.driver.program import GROUP_END, decode_entries

    d = lp.desc
    P, Q = d.P, d.Q
    ws = decode_entries(lp)[1]
    explicit_zero = (lp.codes != GROUP_END) & (lp.weights == 0)
    fillers = row_end = conflict = 0
    s = e = 0
    for ch in lp.channels:
        nz = int(np.count_nonzero(ws[s:s + ch.n_groups * Q]))
        s += ch.n_groups * Q
        # the row's stream entries: up to and including the one that fills its last slot
        n_ent = filled = 0
        while filled < ch.n_groups * Q:
            filled += Q - filled % Q if lp.codes[e + n_ent] == GROUP_END else 1
            n_ent += 1
        f = int(np.count_nonzero(explicit_zero[e:e + n_ent]))
        e += n_ent
        fillers += f
        row_end += -(-(nz + f) // Q) * Q - nz - f
        conflict += ch.n_groups * Q - -(-(nz + f) // Q) * Q
    groups = sum(ch.n_groups for ch in lp.channels)
    px = d.h_it * d.w_valid
    parts = {"useful": lt.macs, "idle_pixels": d.h_it * (d.n_xt * P - d.w_valid) * groups * Q,
             "fillers": px * fillers, "row_ends": px * row_end, "conflict_groups": px * conflict,
             "overhead": lanes * (lt.setup + lt.clear + lt.fill)}
    assert sum(parts.values()) == lanes * lt.total, (parts, lanes * lt.total)
    return parts


def engine_figures(qmodel, lanes: int) -> dict:
    from zeroskip.host.compiler.lowering import compile_model, weight_bytes

    hw = HwConfig(lanes=lanes)
    sp, de = compile_model(qmodel, hw), compile_model(qmodel, hw, dense=True)
    ts, td = image_timing(sp), image_timing(de)
    layers = []
    for layer, lps, a, b in zip(qmodel.layers, sp.layers, ts["layers"], td["layers"]):
        macs_dense = int(layer.weight.size) * lps.desc.h_it * lps.desc.w_valid
        layers.append({"name": layer.name, "kind": "fc" if lps.desc.h_it * lps.desc.w_valid == 1 else "conv",
                       "P": lps.desc.P, "Q": lps.desc.Q, "macs_dense": macs_dense,
                       "macs_sparse": a.macs, "cycles_sparse": a.total, "cycles_dense": b.total,
                       "utilization": a.macs / (lanes * a.total), "speedup": b.total / a.total,
                       "ideal_speedup": macs_dense / max(1, a.macs), "lane_cycles": lane_budget(lps, a, lanes)})
    macs_dense = sum(lay["macs_dense"] for lay in layers)
    # the whole image's lane-cycles: the layers' parts plus the input and output phases
    budget = {k: sum(lay["lane_cycles"][k] for lay in layers) for k in layers[0]["lane_cycles"]}
    budget["input_output"] = lanes * (ts["input"] + ts["output"])
    wd, wc = weight_bytes(qmodel, sp)
    return {"lanes": lanes, "layers": layers, "cycles_sparse": ts["total"], "cycles_dense": td["total"],
            "macs_sparse": ts["macs"], "macs_dense": macs_dense, "utilization": ts["macs"] / (lanes * ts["total"]),
            "lane_cycles": budget,
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
    total = f["lanes"] * f["cycles_sparse"]
    print("lane-cycles of the sparse run, as fractions of LANES x cycles: useful MACs; idle lanes of pixels past "
          "the row end (tile P); zero-weight filler slots; empty slots in a row's last group (group Q); groups ended "
          "early by bank conflicts; layer SETUP/clear/FILL; the input and output phases")
    parts = LANE_PARTS
    rows = [[lay["name"]] + [f"{lay['lane_cycles'][k] / total:.3f}" for k in parts] + ["-"]
            for lay in f["layers"]]
    rows.append(["total"] + [f"{f['lane_cycles'][k] / total:.3f}" for k in parts + ("input_output",)])
    print(_table(rows, ["layer", *LANE_PART_HEADS, "in/out"]))


from zeroskip.host.quant.qmodel import dense_grid_twin  # noqa: E402


def sparse_figures(args) -> dict:
    """63×63 detector images, N = 20: cycles first input beat → last output beat, sparse-pixel
    mode (both input formats) vs dense mode on the same engine."""
    from zeroskip.driver.bundle import pack_inputs
    from zeroskip.driver.golden import GoldenEngine
    from zeroskip.driver.program import encode_program

    from zeroskip.host.compiler.lowering import compile_model
    from zeroskip.host.pipeline import TrainConfig, get_trained

    tr = get_trained(TrainConfig(dataset="detector", model="sparsepixels", sparsity=args.sparsity, seed=args.seed,
                                 n_max=20), quiet=args.quiet)
    x = tr.x_test_int8[:200]
    hw = HwConfig(lanes=8)
    rows = {}
    sites_run = None
    for label, model, kw in (("sparse-pixel, sites packet", tr.qmodel, {"input_mode": "sites"}),
                             ("sparse-pixel, engine reduce", tr.qmodel, {"input_mode": "reduce"}),
                             ("sparse-pixel, dense weights", tr.qmodel, {"input_mode": "sites", "dense": True}),
                             ("dense grid, pruned weights", dense_grid_twin(tr.qmodel), {}),
                             ("dense mode (no skipping)", dense_grid_twin(tr.qmodel), {"dense": True})):
        prog = compile_model(model, hw, **kw)
        eng = GoldenEngine(hw)
        eng.load(encode_program(prog))
        n = 200 if model is tr.qmodel else 4
        eng.run_images(pack_inputs(x[:n], prog.meta["input_layout"]))
        if sites_run is None:
            sites_run = (prog, eng)  # the first program: its per-layer cycles are the breakdown below
        cyc = np.asarray(eng.image_cycles, float)
        rows[label] = {"cycles_mean": float(cyc.mean()), "cycles_p99": float(np.percentile(cyc, 99)),
                       "us_mean": float(cyc.mean()) / CLOCK_MHZ}
    base = rows["dense mode (no skipping)"]["cycles_mean"]
    # the ordinary CNN of the same size (dense conv + pool over the whole grid), trained,
    # pruned and quantised the same way: the accuracy comparison
    twin = get_trained(TrainConfig(dataset="detector", model="sparsepixels-dense", sparsity=args.sparsity,
                                   seed=args.seed, n_max=20), quiet=args.quiet)
    print(f"\nsparse-pixel mode: 63x63 detector images, N=20, LANES=8; accuracy sparse-pixel model float "
          f"{tr.accuracy_float:.3f} / int8 {tr.accuracy_int8:.3f}, dense CNN of the same size float "
          f"{twin.accuracy_float:.3f} / int8 {twin.accuracy_int8:.3f}")
    print("cycles first input beat -> last output beat, golden model (cycle-exact with the RTL) over 200 images")
    print(_table([[k, f"{v['cycles_mean']:.0f}", f"{v['cycles_p99']:.0f}", f"{v['us_mean']:.2f}",
                   f"{base / v['cycles_mean']:.1f}x"] for k, v in rows.items()],
                 ["program", "cycles mean", "p99", "us @100MHz", "fewer than dense"]))
    from zeroskip.host.bench.sparse import breakdown_of_run, format_breakdown

    breakdown = breakdown_of_run(tr.qmodel, *sites_run)
    print(format_breakdown(breakdown))
    return {"rows": rows, "breakdown": breakdown, "accuracy_float": tr.accuracy_float,
            "accuracy_int8": tr.accuracy_int8,
            "dense_twin_accuracy_float": twin.accuracy_float, "dense_twin_accuracy_int8": twin.accuracy_int8}


def run_bench(args) -> dict:
    from zeroskip.host.pipeline import TrainConfig, get_trained

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {}
    args.dataset = args.dataset if args.dataset in ("synthetic", "digits") else "synthetic"
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
    if not args.no_sparse:
        result["sparse_pixels"] = sparse_figures(args)
    if not args.no_sim and args.backend in ("auto", "sim"):
        from zeroskip.host.bench.sim import sim_figures

        result["sim"] = sim_figures(tr, lanes_list, args)
    if not args.no_synth:
        from zeroskip.host.bench.resources import resource_table

        t = time.perf_counter()
        res = resource_table(lanes_list, tools=getattr(args, "yosys", None))
        result["resources"] = res
        print(f"\nYosys synth_xilinx resources ({time.perf_counter() - t:.0f} s):")
        print(res["text"] if isinstance(res, dict) and "text" in res else res)
    from zeroskip.host.bench.targets import format_targets, targets

    result["targets"] = targets(result)
    print("\nperformance targets, each measured in this run (measured cause where one is not met):")
    print(format_targets(result["targets"]))
    (out / "bench.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwritten: {out / 'bench.json'}")
    return result
