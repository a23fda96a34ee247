"""cocotb bench of ``zeroskip_top`` in sparse-pixel mode against the golden model.

Programs come from the host compiler (``compile_model(..., input_mode="sites"|"reduce")``)
for random sparse-pixel models (:func:`zeroskip.host.quant.randnet.random_sparse_qmodel`) and a
detector-style model (63x63, four sconv3x3 + max-pool blocks, FC 144-16-3). Every command
goes to the RTL and to :class:`~zeroskip.driver.golden.GoldenEngine`: response beats must
be identical, ``CYCLES - STALL``, ``COMPUTE`` and ``MACS`` equal to the golden counters,
under random idle cycles on the input stream and random backpressure on the output.
Images include no active site, more than n_max active sites, sites on the borders, and
pooled cells dropped on odd map sizes; malformed site packets give the golden error code
and beat (BAD_SITES, INPUT_SHORT, INPUT_LONG) and the next run is exact.

Run through the pytest runner ``test_sparse_top`` below. ``ZEROSKIP_SPARSE_NETS`` sets how many random
models ``test_random_sparse`` compiles per input mode.
"""

from __future__ import annotations

import os
from dataclasses import replace

import cocotb
import numpy as np
import pytest
from zeroskip.driver import contract as C
from zeroskip.driver.bundle import pack_inputs
from zeroskip.driver.golden import pack_image_beats, parse_response
from zeroskip.driver.program import F_AVG, F_MAXRED, F_POOLSITES, F_SCRUB, F_SITES, encode_program
from zeroskip.host.compiler.lowering import CompileError, compile_model
from zeroskip.host.quant import randnet
from zeroskip.host.quant.qmodel import QInputReduce, QLayer, QModel, QSparsePool
from zeroskip.tb.common import builds
from zeroskip.tb.common.checker import Checker
from zeroskip.tb.common.checker import setup as top_setup
from zeroskip.tb.common.programs import set_field

pytestmark = pytest.mark.rtl

SEED = int(os.environ.get("ZEROSKIP_TB_SEED", "4321"))


def image_beats(prog, x: np.ndarray) -> np.ndarray:
    """int8 images (N, C, H, W) -> the packet of a RUN of N images."""
    packed = pack_inputs(x, prog.meta["input_layout"])
    if isinstance(packed, list):
        return np.concatenate(packed) if packed else np.zeros(0, np.uint64)
    return pack_image_beats(packed, prog.in_bytes)


def detector_like(rng: np.random.Generator, n_max: int = 48, threshold: int = 20, size: int = 63) -> QModel:
    """The default sparse-pixel model's shape (docs/sparse_pixels.md) with random weights
    (``size`` x ``size`` input; 63 is the detector's)."""
    layers = []
    c = 1
    for i, c_out in enumerate((8, 8, 16, 16)):
        w = randnet._weights(rng, (c_out, c, 3, 3), 0.5, False, False)
        bias, mult, shift = randnet._requant(rng, w, False)
        layers.append(QLayer("sconv", w, bias, mult, shift, padding=1, relu=True, name=f"sconv{i}"))
        layers.append(QSparsePool("max", name=f"spool{i}"))
        c = c_out
    s = size
    for _ in range(4):
        s //= 2
    w = randnet._weights(rng, (16, 16 * s * s), 0.5, False, False)
    bias, mult, shift = randnet._requant(rng, w, False)
    layers.append(QLayer("fc", w, bias, mult, shift, relu=True, name="fc0"))
    w = randnet._weights(rng, (3, 16), 0.3, False, False)
    bias, _, _ = randnet._requant(rng, w, False)
    layers.append(QLayer("fc", w, bias, np.ones(3, np.int64), np.full(3, 1, np.int64), name="fc1"))
    return QModel(input_shape=(1, size, size), layers=tuple(layers), name="detector_like",
                  reduce=QInputReduce(threshold, n_max))


def compile_or_none(model, hw, mode, dense=False):
    try:
        return compile_model(model, hw, dense=dense, input_mode=mode)
    except (CompileError, ValueError):
        return None


async def setup(dut, *, flow: bool = True):
    return await top_setup(dut, flow=flow, seed=SEED)


async def run_images(ck: Checker, prog, x: np.ndarray, what: str):
    await ck.run(image_beats(prog, x), x.shape[0], what=what)


# ----------------------------------------------------------------------------- tests

@cocotb.test()
async def test_config(dut):
    """CONFIG0[16] reports sparse-pixel support."""
    tb, _, _, _ = await setup(dut, flow=False)
    c0 = await tb.read("CONFIG0")
    assert (c0 >> 16) & 1 == int(tb.hw.site_cap > 0), hex(c0)


@cocotb.test()
async def test_random_sparse(dut):
    """Random sparse-pixel models, both input modes, sparse and dense programs, batches
    with empty, overfull and border-heavy images, random stream flow."""
    tb, ck, r, rng = await setup(dut)
    if tb.hw.site_cap == 0:
        return
    n = int(os.environ.get("ZEROSKIP_SPARSE_NETS", "4"))
    for mode in ("sites", "reduce"):
        done = tries = 0
        while done < n and tries < 20 * n:
            tries += 1
            shape = None
            if mode == "reduce":
                shape = (1, int(rng.integers(1, 20)), int(rng.integers(1, 20)))
            model = randnet.random_sparse_qmodel(rng, input_shape=shape, zero_channel=r.random() < 0.2,
                                                 dense_channel=r.random() < 0.2, saturate=r.random() < 0.2)
            dense = r.random() < 0.2
            prog = compile_or_none(model, tb.hw, mode, dense)
            if prog is None:
                continue
            tb.random_flow(r, p_idle=r.choice([0.0, 0.2, 0.5]), p_bp=r.choice([0.0, 0.2, 0.5]))
            what = f"{mode} net {done} {[getattr(l, 'kind', 'spool') for l in model.layers]}"
            await ck.load(encode_program(prog), what=what)
            for b in range(2):
                x = randnet.random_sparse_input(rng, model, r.randint(1, 4))
                await run_images(ck, prog, x, f"{what} batch {b}")
            done += 1
        assert done == n, f"only {done} of {n} random {mode} models compiled"


@cocotb.test()
async def test_detector_like(dut):
    """The detector-shaped model (63x63: odd maps drop pooled cells) in both input modes."""
    tb, ck, r, rng = await setup(dut)
    if tb.hw.site_cap == 0:
        return
    model = detector_like(rng, size=63 if tb.hw.act_bytes >= 65536 else 31)
    for mode in ("sites", "reduce"):
        prog = compile_model(model, tb.hw, input_mode=mode)
        await ck.load(encode_program(prog), what=f"detector {mode}")
        x = randnet.random_sparse_input(rng, model, 3, border=True)
        await run_images(ck, prog, x, f"detector {mode}")
        # a full list (all sites active) and an empty image
        x = np.zeros((2, *model.input_shape), np.int8)
        x[0, 0] = 100
        await run_images(ck, prog, x, f"detector {mode} full/empty")


@cocotb.test()
async def test_site_packet_errors(dut):
    """BAD_SITES (n > n_max, y or x off the map), INPUT_SHORT / INPUT_LONG inside a site
    packet, at several images of a batch; each followed by an exact run."""
    tb, ck, r, rng = await setup(dut)
    if tb.hw.site_cap == 0:
        return
    model = randnet.random_sparse_qmodel(rng, input_shape=(2, 9, 7), n_max=6, threshold=10, pool="max",
                                         n_sconv=1, n_hidden_fc=0)
    prog = compile_model(model, tb.hw, input_mode="sites")
    await ck.load(encode_program(prog))
    c, h, w = model.input_shape

    def packets(k):
        x = randnet.random_sparse_input(rng, model, k, fraction=0.15)
        return pack_inputs(x, prog.meta["input_layout"])

    def cat(parts):
        return np.concatenate([np.asarray(p, np.uint64) for p in parts])

    good = packets(3)
    cases = []
    bad_n = np.array([prog.n_max + 1] + [0] * (prog.n_max + 1), np.uint64)
    cases.append(("n > n_max first", [bad_n], 1))
    cases.append(("n > n_max second", [good[0], bad_n, good[1]], 3))
    for (y, x) in ((h, 0), (0, w), (255, 3), (h - 1, w)):
        pk = np.array([3, 1 | (1 << 8), y | (x << 8), 2 | (3 << 8)], np.uint64)
        cases.append((f"site ({y},{x}) off the map", [good[0], pk, good[1]], 3))
        cases.append((f"site ({y},{x}) last of batch", [good[0], pk], 2))
    ok = np.array([2, 1 | (2 << 8) | (50 << 16), 3 | (1 << 8) | (60 << 16)], np.uint64)
    cases.append(("short inside packet", [good[0], ok[:2]], 2))
    cases.append(("short at packet end", [good[0], ok], 3))
    cases.append(("long", [good[0], ok, good[1]], 2))
    cases.append(("empty images", [np.zeros(1, np.uint64)] * 3, 3))
    cases.append(("long after empty", [np.zeros(1, np.uint64)] * 3, 2))
    bad_then_short = np.array([3, 1 | (1 << 8), h | (1 << 8)], np.uint64)
    cases.append(("bad site then short", [bad_then_short], 1))
    for what, parts, batch in cases:
        await ck.run(cat(parts), batch, what=what)
        await ck.run(cat(packets(2)), 2, what=f"after {what}")


@cocotb.test()
async def test_sparse_load_checks(dut):
    """Header and descriptor checks of sparse-pixel programs: the golden code and beat."""
    tb, ck, r, rng = await setup(dut)
    hw = tb.hw
    model = randnet.random_sparse_qmodel(rng, input_shape=(1, 8, 8), n_max=8, threshold=5, pool="avg",
                                         n_sconv=2, n_hidden_fc=1)
    if hw.site_cap == 0:
        # the compiler refuses sparse models here; the loader refuses their programs
        prog = compile_model(model, replace(hw, site_cap=64), input_mode="reduce")
        resp = await ck.load(encode_program(prog), what="sparse program, no sparse support")
        assert parse_response(resp[0])[1] == C.ERROR_CODES["CAPACITY"]
        return
    prog = compile_model(model, hw, input_mode="reduce")
    good = encode_program(prog)
    starts = []  # descriptor beat of each layer
    pos = 4
    for lp in prog.layers:
        starts.append(pos)
        pos += 8 + 2 * len(lp.channels) + 3 * (-(-lp.n_entries // 16))
    d0, d1 = starts[0], starts[1]
    grid = starts[next(i for i, lp in enumerate(prog.layers) if not lp.desc.sites)]
    cases = [
        ("n_max 0", set_field(good, 1, 56, 8, 0)),
        ("n_max > SITE_CAP", set_field(good, 1, 56, 8, hw.site_cap + 1)),
        ("reduce with C_in 2", set_field(good, 2, 56, 4, 2)),
        ("sites with C_in 7", set_field(set_field(good, 2, 56, 4, 7), 1, 48, 8, 2)),
        ("first layer not SITES", set_field(good, d0, 3, 1, 0)),
        ("SITES with XS2", set_field(good, d0, 22, 1, 1)),
        ("SITES with in_c_step", set_field(good, d0, 48, 16, 1)),
        ("SITES with P > 1", set_field(set_field(good, d0, 8, 4, 1), d0, 12, 4, hw.lanes_log2 - 1)),
        ("MAXRED and AVG", set_field(good, d1, 4, 2, 3)),
        ("POOLSITES without SITES", set_field(good, d1, 3, 1, 0)),
        ("POOLSITES with h_it 65", set_field(good, d1 + 1, 0, 16, 65)),
        ("POOLSITES with w_valid 65", set_field(good, d1 + 1, 32, 16, 65)),
        ("SCRUB on layer 0 in mode 1", set_field(good, d0, 7, 1, 1)),
        ("in_list on a grid layer", set_field(good, grid, 20, 1, 1)),
        ("out_list on a grid layer", set_field(good, grid, 21, 1, 1)),
        ("SITES on the OUT layer", set_field(good, starts[-1], 3, 1, 1)),
    ]
    for what, beats in cases:
        resp = await ck.load(beats, what=what)
        assert parse_response(resp[0])[1] != 0, f"{what}: accepted"
    await ck.load(good, what="good after malformed")
    x = randnet.random_sparse_input(rng, model, 2)
    await run_images(ck, prog, x, "after malformed")
    flags = {lp.desc.flags & (F_SITES | F_MAXRED | F_AVG | F_POOLSITES | F_SCRUB) for lp in prog.layers}
    assert any(f & F_AVG for f in flags) and any(f & F_SCRUB for f in flags), flags


# ----------------------------------------------------------------------------- pytest runner

@pytest.mark.parametrize("build", [builds.param(b) for b in ("verilator-sparse-L8", "verilator-sparse-L4",
                                                             "verilator-top-L32",
                                                             "verilator-sparse-L8-nosites", "icarus-sparse-L8")])
def test_sparse_top(build, tmp_path):
    """Verilator LANES 8 and 4 (SITE_CAP 64), LANES 32 (the top bench's build, with
    FAULT_INJECT) and a SITE_CAP = 0 build (no sparse-pixel
    support: CONFIG0[16] = 0, sparse programs refused); Icarus one short LANES 8
    configuration with a smaller activation memory. ``--fuzz`` raises the random models per
    input mode from 4 (Verilator) / 1 (Icarus) to 40 / 4."""
    sim = builds.BUILDS[build].simulator
    nets = {"verilator": (4, 40), "icarus": (1, 4)}[sim][int(builds.fuzz_enabled())]
    builds.run(build, __file__, tmp_path, {"ZEROSKIP_SPARSE_NETS": str(nets)})
