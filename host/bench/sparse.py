"""Sparse-pixel mode, where the cycles go: per layer of the detector model, mean cycles
and MACs per image and MAC utilisation, from the golden model (cycle-exact with the RTL)
over the test images.

    python -m zeroskip.host.bench.sparse [--lanes 8,16] [--images 200]
"""

from __future__ import annotations

import argparse

import numpy as np

from zeroskip.driver.bundle import pack_inputs
from zeroskip.driver.golden import GoldenEngine
from zeroskip.driver.program import F_MAXRED, F_POOLSITES, HwConfig, encode_program


def _kind(desc) -> str:
    if desc.flags & F_POOLSITES:
        return "site pool (max)" if desc.flags & F_MAXRED else "site pool (avg)"
    if desc.sites:
        return f"site conv (tb {desc.tb})"
    return "out" if desc.out else "fc"


def layer_breakdown(qmodel, x_int8: np.ndarray, lanes: int, input_mode: str = "sites") -> dict:
    """Per-layer mean cycles and MACs of ``qmodel``'s sparse-pixel program over ``x_int8``,
    with the whole image's cycles (input and output included) and utilisation."""
    from zeroskip.host.compiler.lowering import compile_model

    hw = HwConfig(lanes=lanes)
    prog = compile_model(qmodel, hw, input_mode=input_mode)
    eng = GoldenEngine(hw)
    eng.load(encode_program(prog))
    eng.run_images(pack_inputs(x_int8, prog.meta["input_layout"]))
    return breakdown_of_run(qmodel, prog, eng)


def breakdown_of_run(qmodel, prog, eng: GoldenEngine) -> dict:
    """:func:`layer_breakdown` of a golden-model run that already happened: ``eng`` ran
    ``prog`` (compiled from ``qmodel``) on the images."""
    lanes = prog.lanes
    n_images = len(eng.image_cycles)
    per = np.asarray(eng.image_layers, float).mean(axis=0)
    names = [getattr(layer, "name", "") or f"layer {i}" for i, layer in enumerate(qmodel.layers)]
    layers = []
    for lp, name, (cyc, macs) in zip(prog.layers, names, per):
        layers.append({"name": name, "kind": _kind(lp.desc), "c_out": lp.desc.c_out,
                       "groups": int(sum(ch.n_groups for ch in lp.channels)), "cycles": float(cyc),
                       "macs": float(macs), "utilization": float(macs / (lanes * cyc))})
    cycles = float(np.mean(eng.image_cycles))
    macs = eng.counters["MACS"] / n_images
    return {"lanes": lanes, "images": n_images, "cycles": cycles, "macs": macs,
            "utilization": macs / (lanes * cycles), "layers": layers}


def format_breakdown(b: dict) -> str:
    from zeroskip.host.bench.figures import _table

    rows = [[lay["name"], lay["kind"], lay["c_out"], lay["groups"], f"{lay['cycles']:.0f}", f"{lay['macs']:.0f}",
             f"{lay['utilization']:.2f}"] for lay in b["layers"]]
    head = (f"sparse-pixel program, LANES={b['lanes']}: {b['cycles']:.0f} cycles per image (input and output "
            f"included), MAC utilisation {b['utilization']:.3f}, mean of {b['images']} images")
    return head + "\n" + _table(rows, ["layer", "kind", "C_out", "groups", "cycles", "MACs", "util"])


def main(argv=None) -> int:
    from zeroskip.host.pipeline import TrainConfig, get_trained

    ap = argparse.ArgumentParser(prog="python -m zeroskip.host.bench.sparse", description=__doc__.split("\n\n")[0])
    ap.add_argument("--lanes", default="8,16", help="comma-separated LANES values (default 8,16)")
    ap.add_argument("--images", type=int, default=200, help="test images (default 200)")
    ap.add_argument("--sparsity", type=float, default=0.70)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    tr = get_trained(TrainConfig(dataset="detector", model="sparsepixels", sparsity=args.sparsity, seed=args.seed,
                                 n_max=20), quiet=True)
    for lanes in (int(v) for v in args.lanes.split(",")):
        print(format_breakdown(layer_breakdown(tr.qmodel, tr.x_test_int8[: args.images], lanes)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
