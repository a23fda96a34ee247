"""RTL block tests: the cocotb benches of the engine's building blocks.

zero_skip_mac, zs_requant, sparse_dot_product (every tile shape of LANES 4/8/16 on Verilator, 8/32 on Icarus),
sparse_weight_store (``$readmemh`` of a compiled program's weight_store.hex, read back,
then written) and zs_regs (AXI-Lite ordering and the register map). Verilator runs all,
Icarus a smaller set; one xdist group per build.
"""

import hashlib

import numpy as np
import pytest
from zeroskip.driver.sim import build as simbuild


def _group(sim, name):
    return pytest.mark.xdist_group(f"{sim}-{name}")


BLOCKS = []
for sim in ("verilator", "icarus"):
    BLOCKS += [
        pytest.param(sim, "zero_skip_mac", "zeroskip.tb.test_zero_skip_mac", {"ACC_W": 32, "ACC_ENABLE": 1},
                     id=f"{sim}-mac", marks=_group(sim, "mac")),
        pytest.param(sim, "zs_requant", "zeroskip.tb.test_zs_requant", {"N": 4},
                     id=f"{sim}-requant", marks=_group(sim, "requant")),
        pytest.param(sim, "zs_regs", "zeroskip.tb.test_zs_regs",
                     {"LANES": 8, "FAULT_INJECT": 1} if sim == "verilator" else
                     {"LANES": 4, "MAX_LAYERS": 5, "SITE_CAP": 0},
                     id=f"{sim}-regs", marks=_group(sim, "regs")),
    ]
for lanes in (4, 8, 16):
    BLOCKS.append(pytest.param("verilator", "sparse_dot_product", "zeroskip.tb.test_sparse_dot_product",
                               {"LANES": lanes}, id=f"verilator-dot-L{lanes}", marks=_group("verilator", f"dot{lanes}")))
for lanes in (8, 32):
    BLOCKS.append(pytest.param("icarus", "sparse_dot_product", "zeroskip.tb.test_sparse_dot_product", {"LANES": lanes},
                               id=f"icarus-dot-L{lanes}", marks=_group("icarus", f"dot{lanes}")))


@pytest.mark.rtl
@pytest.mark.parametrize("simulator,toplevel,module,params", BLOCKS)
def test_block(simulator, toplevel, module, params, tmp_path):
    simbuild.run(toplevel, module, params, simulator, test_dir=tmp_path)


def _weight_store_hex() -> str:
    """weight_store.hex of a small compiled program, at a content-addressed path."""
    from zeroskip.driver.program import HwConfig, store_hex
    from zeroskip.host.quant import randnet
    from zeroskip.host.compiler.lowering import compile_model

    hw = HwConfig(lanes=8, act_bytes=8192, w_slots=1024)
    rng = np.random.default_rng(3)
    prog = compile_model(randnet.random_qmodel(rng, n_conv=2, n_hidden_fc=1, sparsity=0.5), hw)
    text = store_hex(prog, hw)
    path = simbuild.cache_root() / f"ws-{hashlib.sha256(text.encode()).hexdigest()[:12]}.hex"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(text)
    return str(path)


@pytest.mark.rtl
@pytest.mark.parametrize("simulator", [pytest.param(s, marks=_group(s, "ws")) for s in ("verilator", "icarus")])
def test_weight_store(simulator, tmp_path):
    hexfile = _weight_store_hex()
    params = {"DEPTH": 128, "WIDTH": 8 * 24, "INIT_FILE": f'"{hexfile}"'}
    simbuild.run("sparse_weight_store", "zeroskip.tb.test_sparse_weight_store", params, simulator,
                 test_dir=tmp_path, extra_env={"ZEROSKIP_WS_HEX": hexfile})
