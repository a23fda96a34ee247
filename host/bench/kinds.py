"""MAC utilisation per layer kind: one random layer of each kind the engine runs, at a
realistic size and 70 % sparsity (random int8 weights, uniformly pruned), compiled for
LANES 8, 16 and 32; the figure is the layer's useful MACs over ``LANES × its cycles``
(SETUP and FILL included), from the golden model the RTL tests hold cycle-exact.

    python -m zeroskip.host.bench.kinds [--lanes 8,16,32] [--sparsity 0.7] [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from zeroskip.driver.golden import image_timing
from zeroskip.driver.program import HwConfig

from zeroskip.host.bench.figures import LANE_PART_HEADS, LANE_PARTS, _table, lane_budget
from zeroskip.host.compiler import compile_model
from zeroskip.host.quant import randnet
from zeroskip.host.quant.qmodel import SHIFT_MIN, QLayer, QModel

# name: (input shape, layer kwargs: c_out, kernel, stride, pads, depthwise, skip, pool kind)
KINDS = {
    "conv 3x3": ((16, 16, 16), dict(c_out=16, k=(3, 3), pads=(1, 1, 1, 1))),
    "conv 3x3 stride 2": ((16, 16, 16), dict(c_out=32, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1))),
    "conv 3x3 + residual add": ((16, 16, 16), dict(c_out=16, k=(3, 3), pads=(1, 1, 1, 1), skip=True)),
    "conv 1x1 (pointwise)": ((64, 25, 5), dict(c_out=64, k=(1, 1))),
    "conv 1x1 stride 2 (projection)": ((16, 16, 16), dict(c_out=32, k=(1, 1), stride=(2, 2))),
    "conv 10x4 stride 2 (1 channel)": ((1, 49, 10), dict(c_out=64, k=(10, 4), stride=(2, 2), pads=(4, 5, 1, 2))),
    "conv 5x5 on 6 channels (hcw)": ((6, 14, 14), dict(c_out=16, k=(5, 5))),
    "depthwise 3x3": ((32, 16, 16), dict(k=(3, 3), pads=(1, 1, 1, 1), depthwise=True)),
    "depthwise 3x3 stride 2": ((32, 16, 16), dict(k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1), depthwise=True)),
    "average pool 2x2": ((16, 16, 16), dict(pool="avg")),
    "global average pool": ((64, 8, 8), dict(pool="global")),
    "linear 256 -> 128": ((256, 1, 1), dict(fc=128)),
}


def kind_model(name: str, sparsity: float, rng: np.random.Generator) -> QModel:
    """Input → the layer of kind ``name`` → a small output layer."""
    shape, kw = KINDS[name]
    c, h, w = shape
    layers = []
    if "fc" in kw:
        wq = randnet._weights(rng, (kw["fc"], c * h * w), sparsity, False, False)
        bias, mult, shift = randnet._requant(rng, wq, False)
        layers.append(QLayer("fc", wq, bias, mult, shift, relu=True, name=name))
        n_in = kw["fc"]
    elif "pool" in kw:
        kh, kwid = (2, 2) if kw["pool"] == "avg" else (h, w)
        st = (2, 2) if kw["pool"] == "avg" else (1, 1)
        m, s = randnet.multiplier_for(1.0 / (kh * kwid))
        layers.append(QLayer("conv", np.ones((c, 1, kh, kwid), np.int8), np.zeros(c, np.int32),
                             np.full(c, m, np.int64), np.full(c, s, np.int64), stride=st, groups=c, name=name))
        n_in = c * ((h - kh) // st[0] + 1) * ((w - kwid) // st[1] + 1)
    else:
        dw = kw.get("depthwise", False)
        c_out = c if dw else kw["c_out"]
        kh, kwid = kw["k"]
        pads = kw.get("pads", (0, 0, 0, 0))
        st = kw.get("stride", (1, 1))
        wq = randnet._weights(rng, (c_out, 1 if dw else c, kh, kwid), sparsity, False, False)
        bias, mult, shift = randnet._requant(rng, wq, False)
        skip = kw.get("skip", False)
        layers.append(QLayer("conv", wq, bias, mult, shift, pads=pads, stride=st, groups=c_out if dw else 1,
                             relu=True, skip=-1 if skip else None,
                             skip_mult=rng.integers(1, 128, size=c_out) if skip else None, name=name))
        ho = (h + pads[0] + pads[1] - kh) // st[0] + 1
        wo = (w + pads[2] + pads[3] - kwid) // st[1] + 1
        n_in = c_out * ho * wo
    wq = randnet._weights(rng, (4, n_in), 0.99, False, False)
    bias, _, _ = randnet._requant(rng, wq, False)
    layers.append(QLayer("fc", wq, bias, np.ones(4, np.int64), np.full(4, SHIFT_MIN, np.int64), name="out"))
    return QModel(input_shape=shape, layers=tuple(layers), name=name)


def kind_figures(lanes=(8, 16, 32), sparsity: float = 0.7, seed: int = 0) -> list[dict]:
    rows = []
    for name in KINDS:
        model = kind_model(name, sparsity, np.random.default_rng(seed))
        for L in lanes:
            prog = compile_model(model, HwConfig(lanes=L))
            lt = image_timing(prog)["layers"][0]
            d = prog.layers[0].desc
            rows.append({"kind": name, "lanes": L, "P": d.P, "Q": d.Q, "macs": lt.macs, "cycles": lt.total,
                         "issue_cycles": lt.issues, "utilization": lt.macs / (L * lt.total),
                         "issue_utilization": lt.macs / (L * max(lt.issues, 1)),
                         "lane_cycles": lane_budget(prog.layers[0], lt, L)})
    return rows


def print_kinds(rows: list[dict]) -> None:
    lanes = sorted({r["lanes"] for r in rows})
    print(f"MAC utilisation per layer kind (random layer, golden model cycles incl. SETUP/FILL; "
          f"issue-only in brackets), LANES {', '.join(map(str, lanes))}:")
    head = f"{'layer kind':<32}" + "".join(f"{'L' + str(L) + ' PxQ':>10}{'util':>16}" for L in lanes)
    print(head)
    print("-" * len(head))
    for name in dict.fromkeys(r["kind"] for r in rows):
        line = f"{name:<32}"
        for L in lanes:
            r = next(r for r in rows if r["kind"] == name and r["lanes"] == L)
            line += f"{str(r['P']) + 'x' + str(r['Q']):>10}{r['utilization']:>8.3f} ({r['issue_utilization']:.3f})"
        print(line)
    L0 = lanes[0]
    print(f"\nwhere the lane-cycles go at LANES {L0} (fractions of LANES x cycles; causes as in the TinyCNN table):")
    body = []
    for name in dict.fromkeys(r["kind"] for r in rows):
        r = next(r for r in rows if r["kind"] == name and r["lanes"] == L0)
        total = sum(r["lane_cycles"].values())
        body.append([name] + [f"{r['lane_cycles'][k] / total:.3f}" for k in LANE_PARTS])
    print(_table(body, ["layer kind", *LANE_PART_HEADS]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", default="8,16,32")
    ap.add_argument("--sparsity", type=float, default=0.7)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    rows = kind_figures(tuple(int(v) for v in a.lanes.split(",")), a.sparsity)
    if a.json:
        print(json.dumps(rows, indent=1))
    else:
        print_kinds(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
