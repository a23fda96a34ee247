"""The performance-target table of ``zeroskip bench`` (host/bench/targets.py): figures
come from the run's own measurements, met/not met follows the target, a shortfall names
its largest lane-cycle losses, and skipped measurements are reported as not measured."""

import numpy as np
from zeroskip.host.bench import figures, targets
from zeroskip.host.quant import randnet


def test_targets_follow_the_measured_figures():
    rng = np.random.default_rng(3)
    model = randnet.random_qmodel(rng, input_shape=(2, 12, 12))
    result = {"engine": [figures.engine_figures(model, lanes) for lanes in (8, 16, 32)]}
    rows = {r["figure"]: r for r in targets.targets(result)}
    for f, goal in zip(result["engine"], (0.95, 0.93, 0.85)):
        r = rows[f"TinyCNN MAC utilisation, LANES={f['lanes']}"]
        assert r["measured"] == round(f["utilization"], 3)
        assert r["met"] == (r["measured"] >= goal)
        if not r["met"]:
            parts = r["cause"].split(", ")
            assert parts and all(p.split()[0] in targets.LOSSES for p in parts)
            # the named losses are the largest of the run's own lane budget
            budget = {k: sum(lay["lane_cycles"][k] for lay in f["layers"]) for k in targets.LOSSES}
            assert parts[0].split()[0] == max(budget, key=budget.get)
    fc = [r for name, r in rows.items() if name.startswith("  FC layer")]
    assert len(fc) == sum(lay["kind"] == "fc" for lay in result["engine"][0]["layers"]) >= 1
    # skipped parts of the bench: not measured, no verdict, no cause
    for name in ("LANES=32 fits the xc7z020 (Yosys)", "LUT per lane, LANES=8 (Yosys)",
                 "native simulation, batch 32 (one process)"):
        assert rows[name]["measured"] is None and rows[name]["met"] is None and rows[name]["cause"] == ""
    text = targets.format_targets(list(rows.values()))
    assert "not measured" in text and text.splitlines()[0].startswith("figure")


def test_resource_targets_use_the_capacity():
    res = {"capacity": {"LUT": 1000, "FF": 1000, "DSP48E1": 100, "BRAM36": 10},
           "rows": [{"LANES": 32, "LUT": 699, "FF": 1, "DSP48E1": 91, "BRAM36": 8},
                    {"LANES": 8, "LUT": 4800, "FF": 1, "DSP48E1": 1, "BRAM36": 1}]}
    rows = {r["figure"]: r for r in targets.targets({"resources": res})}
    fit = rows["LANES=32 fits the xc7z020 (Yosys)"]
    assert fit["measured"] == "LUT 69.9%, DSP 91.0%, BRAM 80.0%" and fit["met"] is False   # DSP over 90 %
    assert rows["LUT per lane, LANES=8 (Yosys)"]["measured"] == 600 and rows["LUT per lane, LANES=8 (Yosys)"]["met"]
    # over the target: the cause splits the LUTs into the per-lane slope and the fixed control
    res["rows"] = [{"params": {"LANES": 8}, "tool": "debian", "LUT": 6000, "FF": 1, "DSP48E1": 1, "BRAM36": 1},
                   {"params": {"LANES": 16}, "tool": "debian", "LUT": 10800, "FF": 1, "DSP48E1": 1, "BRAM36": 1}]
    row = next(r for r in targets.targets({"resources": res}) if r["figure"].startswith("LUT per lane"))
    assert row["figure"] == "LUT per lane, LANES=8 (Yosys debian)" and row["measured"] == 750 and not row["met"]
    assert row["cause"].startswith("600 LUT per lane added") and "plus 1200 LUT of control" in row["cause"]
