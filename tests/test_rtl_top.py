"""RTL top-level tests: the cocotb bench tb/test_zeroskip_top.py on zeroskip_top.

Verilator runs LANES 4, 8, 16 and 32 (each its own cached build, FAULT_INJECT=1 so the fault
test runs too); Icarus runs LANES 8 with a smaller activation memory, which keeps its
slower simulation short. One xdist group per build, so the two workers never compile
the same model. ``--fuzz`` (ZEROSKIP_FUZZ=1) raises the number of random networks per
configuration from 20 (Verilator) / 3 (Icarus) to 200 / 20.
"""

import os

import pytest
from zeroskip.driver.sim import build as simbuild

MODULE = "zeroskip.tb.test_zeroskip_top"

CONFIGS = [
    pytest.param("verilator", {"LANES": 8, "FAULT_INJECT": 1}, id="verilator-L8",
                 marks=pytest.mark.xdist_group("verilator-top-L8")),
    pytest.param("verilator", {"LANES": 4, "FAULT_INJECT": 1}, id="verilator-L4",
                 marks=pytest.mark.xdist_group("verilator-top-L4")),
    pytest.param("verilator", {"LANES": 16, "FAULT_INJECT": 1}, id="verilator-L16",
                 marks=pytest.mark.xdist_group("verilator-top-L16")),
    # the same build as test_rtl_sparse.py's L32 (one xdist group: one worker builds it once)
    pytest.param("verilator", {"LANES": 32, "FAULT_INJECT": 1}, id="verilator-L32",
                 marks=pytest.mark.xdist_group("verilator-L32")),
    pytest.param("icarus", {"LANES": 8, "FAULT_INJECT": 1, "ACT_BYTES": 8192, "W_SLOTS": 4096}, id="icarus-L8",
                 marks=pytest.mark.xdist_group("icarus-top-L8")),
    # the synthesis view: SYNTHESIS defined, so the accumulators and counters are the
    # DSP48E1 instances Yosys and Vivado map, simulated with Yosys's primitive models
    pytest.param("icarus", {"LANES": 8, "FAULT_INJECT": 1, "ACT_BYTES": 8192, "W_SLOTS": 4096}, id="icarus-L8-synth",
                 marks=pytest.mark.xdist_group("icarus-top-L8-synth")),
]


@pytest.mark.rtl
@pytest.mark.parametrize("simulator,params", CONFIGS)
def test_zeroskip_top(simulator, params, tmp_path, request):
    fuzz = os.environ.get("ZEROSKIP_FUZZ") == "1"
    nets = {"verilator": (20, 200), "icarus": (3, 20)}[simulator][int(fuzz)]
    graphs = {"verilator": (8, 100), "icarus": (2, 10)}[simulator][int(fuzz)]
    synth = request.node.callspec.id.endswith("-synth")
    simbuild.run("zeroskip_top", MODULE, params, simulator, test_dir=tmp_path,
                 extra_env={"ZEROSKIP_TOP_NETS": str(nets), "ZEROSKIP_GRAPH_NETS": str(graphs)},
                 defines={"SYNTHESIS": 1} if synth else None,
                 extra_sources=[simbuild.xilinx_cells_sim()] if synth else ())
