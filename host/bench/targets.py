"""The performance targets ``zeroskip bench`` is held to, each with the figure measured
in the same run, whether it is met, and — where it is not — the measured cause (the
largest lane-cycle losses of the layers concerned, ``figures.lane_budget``).

``targets(result)`` takes the ``bench.json`` dictionary :func:`figures.run_bench` builds;
figures a run skipped (``--no-sim``, ``--no-synth``, ``--no-sparse``, a LANES value not
in ``--lanes``) are reported as not measured, never guessed.
"""

from __future__ import annotations

from zeroskip.host.bench.figures import LANE_PARTS

LOSSES = tuple(k for k in LANE_PARTS if k != "useful")


def _engine(result: dict, lanes: int) -> dict | None:
    return next((f for f in result.get("engine", []) if f["lanes"] == lanes), None)


def _resources(result: dict, lanes: int) -> dict | None:
    rows = (result.get("resources") or {}).get("rows") or []
    return next((r for r in rows if r and int(r.get("LANES", r.get("params", {}).get("LANES", -1))) == lanes), None)


def _cause(layers: list[dict]) -> str:
    """The two largest losses over ``layers`` (engine_figures rows with their ``lane_cycles``)."""
    tot = {k: sum(lay["lane_cycles"][k] for lay in layers) for k in LOSSES}
    lane_cycles = sum(sum(lay["lane_cycles"].values()) for lay in layers)
    if not lane_cycles:
        return ""
    worst = sorted(LOSSES, key=lambda k: -tot[k])[:2]
    return ", ".join(f"{k} {tot[k] / lane_cycles:.2f} of lane-cycles" for k in worst if tot[k])


def targets(result: dict) -> list[dict]:
    rows: list[dict] = []

    def add(figure: str, measured, target: str, ok, cause: str = "") -> None:
        rows.append({"figure": figure, "measured": measured, "target": target,
                     "met": None if measured is None else bool(ok),
                     "cause": "" if ok or measured is None else cause})

    for lanes, goal in ((8, 0.95), (16, 0.93), (32, 0.85)):
        f = _engine(result, lanes)
        u = None if f is None else round(f["utilization"], 3)
        add(f"TinyCNN MAC utilisation, LANES={lanes}", u, f">= {goal}", u is not None and u >= goal,
            _cause(f["layers"]) if f else "")
        if lanes == 8 and f:
            fc = [lay for lay in f["layers"] if lay.get("kind") in ("fc", "out")]
            for lay in fc:
                add(f"  FC layer {lay['name']} ({lay['cycles_sparse']} cycles), LANES=8", round(lay["utilization"], 3), ">= 0.8",
                    lay["utilization"] >= 0.8, _cause([lay]))
    for lanes, lut, dsp, bram in ((32, 0.70, 0.90, 0.80),):
        r = _resources(result, lanes)
        if r is None:
            add(f"LANES={lanes} fits the xc7z020 (Yosys)", None, f"LUT <= {lut:.0%}, DSP <= {dsp:.0%}, "
                f"BRAM <= {bram:.0%}", False)
        else:
            cap = result["resources"]["capacity"]
            fr = {k: r[k] / cap[k] for k in ("LUT", "DSP48E1", "BRAM36")}
            add(f"LANES={lanes} fits the xc7z020 (Yosys {r.get('tool', '')})".replace(" )", ")"),
                f"LUT {fr['LUT']:.1%}, DSP {fr['DSP48E1']:.1%}, BRAM {fr['BRAM36']:.1%}",
                f"LUT <= {lut:.0%}, DSP <= {dsp:.0%}, BRAM <= {bram:.0%}",
                fr["LUT"] <= lut and fr["DSP48E1"] <= dsp and fr["BRAM36"] <= bram)
    r8, r16 = _resources(result, 8), _resources(result, 16)
    per_lane = None if r8 is None else round(r8["LUT"] / 8)
    cause = ""
    if r8 is not None and r16 is not None:
        marginal = (r16["LUT"] - r8["LUT"]) / 8
        cause = (f"{marginal:.0f} LUT per lane added (LANES 8 -> 16) plus {r8['LUT'] - 8 * marginal:.0f} LUT of "
                 "control that does not scale with LANES")
    tool = "" if r8 is None else r8.get("tool", "")
    add(f"LUT per lane, LANES=8 (Yosys {tool})".replace(" )", ")"), per_lane, "<= 600",
        per_lane is not None and per_lane <= 600, cause)
    sp = result.get("sparse_pixels") or {}
    bd = sp.get("breakdown")
    u = None if not bd else round(bd["utilization"], 3)
    worst = "" if not bd else ", ".join(
        f"{lay['name']} {lay['utilization']:.2f}" for lay in sorted(bd["layers"], key=lambda r: -r["cycles"])[:3])
    add("sparse-pixel MAC utilisation (63x63, N=20, sites, LANES=8)", u, ">= 0.6", u is not None and u >= 0.6,
        f"one site per cycle (P = 1): the costliest layers {worst}" if worst else "")
    rows_sp = sp.get("rows") or {}
    if rows_sp:
        base = rows_sp["dense mode (no skipping)"]["cycles_mean"]
        s = base / rows_sp["sparse-pixel, sites packet"]["cycles_mean"]
        add("sparse-pixel speedup vs the dense CNN over the whole grid", f"{s:.1f}x",
            "reported as summary.json 'speedup' (cycles_dense_grid)", True)
    sim = result.get("sim") or {}
    nat = sim.get("native") or {}
    if nat:
        b32 = nat["driver_b32"]["inferences_per_s"]
        add("native simulation, batch 32 (one process)", round(b32), ">= 300 inf/s", b32 >= 300)
        ratio = nat["ratio_driver_b32_to_bare"]
        add("  driver / bare compiled model", round(ratio, 3), ">= 0.9", ratio >= 0.9)
        sh = nat.get("sharded_b32")
        if sh:
            add(f"  sharded over {sh['processes']} processes", round(sh["inferences_per_s"]), ">= 1000 inf/s",
                sh["inferences_per_s"] >= 1000,
                f"{sh['processes']} CPUs at {b32:.0f} inf/s each: 1000 needs "
                f"{-(-1000 // max(1, int(b32)))} cores")
    else:
        add("native simulation, batch 32 (one process)", None, ">= 300 inf/s", False)
    return rows


def format_targets(rows: list[dict]) -> str:
    body = [[r["figure"], "not measured" if r["measured"] is None else str(r["measured"]), r["target"],
             "-" if r["met"] is None else ("yes" if r["met"] else "no"), r["cause"]] for r in rows]
    head = ["figure", "measured", "target", "met", "measured cause"]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in body])
