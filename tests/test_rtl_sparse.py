"""RTL sparse-pixel tests: the cocotb bench tb/test_sparse_top.py on zeroskip_top.

Verilator runs LANES 8, 4 and 32 (SITE_CAP 64; LANES 32 is the top tests' build, with
FAULT_INJECT) and a SITE_CAP = 0 build (no sparse-pixel support: CONFIG0[16] = 0, sparse
programs refused); Icarus runs one short LANES 8
configuration with a smaller activation memory. One xdist group per build. ``--fuzz``
(ZEROSKIP_FUZZ=1) raises the random models per input mode from 4 (Verilator) / 1 (Icarus)
to 40 / 4.
"""

import os

import pytest
from zeroskip.driver.sim import build as simbuild

MODULE = "zeroskip.tb.test_sparse_top"

CONFIGS = [
    pytest.param("verilator", {"LANES": 8}, id="verilator-L8",
                 marks=pytest.mark.xdist_group("verilator-sparse-L8")),
    pytest.param("verilator", {"LANES": 4}, id="verilator-L4",
                 marks=pytest.mark.xdist_group("verilator-sparse-L4")),
    # the same build as test_rtl_top.py's L32 (one xdist group: one worker builds it once)
    pytest.param("verilator", {"LANES": 32, "FAULT_INJECT": 1}, id="verilator-L32",
                 marks=pytest.mark.xdist_group("verilator-L32")),
    pytest.param("verilator", {"LANES": 8, "SITE_CAP": 0}, id="verilator-L8-nosites",
                 marks=pytest.mark.xdist_group("verilator-sparse-L8-0")),
    pytest.param("icarus", {"LANES": 8, "ACT_BYTES": 16384, "W_SLOTS": 8192}, id="icarus-L8",
                 marks=pytest.mark.xdist_group("icarus-sparse-L8")),
]


@pytest.mark.rtl
@pytest.mark.parametrize("simulator,params", CONFIGS)
def test_sparse_top(simulator, params, tmp_path):
    fuzz = os.environ.get("ZEROSKIP_FUZZ") == "1"
    nets = {"verilator": (4, 40), "icarus": (1, 4)}[simulator][int(fuzz)]
    simbuild.run("zeroskip_top", MODULE, params, simulator, test_dir=tmp_path,
                 extra_env={"ZEROSKIP_SPARSE_NETS": str(nets)})
