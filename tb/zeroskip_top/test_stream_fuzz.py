"""Stream fuzzing of ``zeroskip_top`` against the golden model.

Valid programs (compiled by the host compiler from TinyCNN-like and random networks,
sparse and dense) and image packets are mutated: truncation, extra beats, TLAST early
(the rest of the packet then follows as a second packet) or late, wrong magic / version /
LANES, out-of-range header, descriptor and channel-record fields, flipped bits, random
beats, random garbage packets, stray packets while idle, BATCH mismatches and a bank
conflict. Under a random input/output flow for every case:

* the response packet equals :class:`~zeroskip.driver.golden.GoldenEngine`'s (error code,
  beat index, or bit-exact results), ends with TLAST, and nothing else comes out;
* STATUS (busy, done, error, code, program valid) and ERR_INFO match;
* the engine is back in IDLE within a bounded number of cycles after the last input
  beat, not counting cycles in which the output was held by backpressure
  (:data:`RUN_ERR_BOUND` for RUN errors and stray packets, :data:`LOAD_ERR_BOUND` for LOAD
  errors, the layers' cycles for a bank conflict);
* a mutated program the loader accepts is run when its layers are self-consistent
  (:func:`safe_to_run`), bit-exact and with the golden counters;
* then the valid program (reloaded when needed) runs bit-exact with ``CYCLES - STALL``,
  ``COMPUTE`` and ``MACS`` equal to the golden model.

``ZEROSKIP_FUZZ_CASES`` (default 60) sets the number of cases, ``ZEROSKIP_TB_SEED`` the
seed; statistics go to the JSON file ``ZEROSKIP_FUZZ_STATS`` (read by the
pytest runner ``test_stream_fuzz`` below).
"""

from __future__ import annotations

import os
import random

import cocotb
import numpy as np
import pytest
from zeroskip.driver.golden import image_timing, pack_image_beats, predict_cycles
from zeroskip.driver.program import (
    BLOCK_BEATS,
    BLOCK_ENTRIES,
    CHANNEL_BEATS,
    HEADER_BEATS,
    LAYER_BEATS,
    HwConfig,
    Program,
    decode_entries,
    encode_program,
)
from zeroskip.tb.common import builds
from zeroskip.tb.common.programs import build_pool, conflict_program, get_field, images, set_field
from zeroskip.tb.common.zsstress import BLOCK_DECODE, CTRL, Oracle, Stats, StreamBench, data_of, random_flow

pytestmark = pytest.mark.rtl

SEED = int(os.environ.get("ZEROSKIP_TB_SEED", "7001"))
N_CASES = int(os.environ.get("ZEROSKIP_FUZZ_CASES", "60"))

# Recovery bounds (cycles from the last input beat to IDLE, output backpressure excluded):
# an error found on an input beat, or a drain ending with TLAST, is answered by the
# response beat in the next cycle and the engine is idle the cycle after it is taken.
RUN_ERR_BOUND = 2
# The loader judges a weight block's third beat after decoding its 16 entries.
LOAD_ERR_BOUND = BLOCK_DECODE + 2
# A good load ends with the memory clear: ACT_BYTES / LANES cycles after the decode.
LOAD_OK_EXTRA = BLOCK_DECODE + 5
# Safe runs of accepted mutants must stay short.
MAX_RUN_CYCLES = 200_000


# ----------------------------------------------------------------------------- programs

def sections(prog: Program) -> list[dict]:
    """Beat index of each layer's descriptor, first record and first weight block."""
    out = []
    i = HEADER_BEATS
    for lp in prog.layers:
        d = i
        i += LAYER_BEATS
        r = i
        i += CHANNEL_BEATS * len(lp.channels)
        b = i
        nb = -(-lp.n_entries // BLOCK_ENTRIES)
        i += BLOCK_BEATS * nb
        out.append({"desc": d, "rec": r, "n_rec": len(lp.channels), "blk": b, "n_blk": nb})
    return out


HEADER_FIELDS = [  # (beat, lo, bits, name)
    (0, 56, 8, "n_layers"), (1, 0, 32, "total"), (1, 32, 16, "in_base"), (1, 48, 8, "input_mode"),
    (1, 56, 8, "n_max"), (2, 0, 32, "in_bytes"), (2, 32, 16, "n_out"), (2, 48, 16, "sparse_fields"),
    (3, 0, 32, "slots"), (3, 32, 16, "channels"), (3, 48, 16, "act_log2"),
]
DESC_FIELDS = [
    (0, 0, 8, "flags"), (0, 8, 4, "log2P"), (0, 12, 4, "log2Q"), (0, 16, 4, "tb"), (0, 20, 2, "lists"),
    (0, 22, 10, "reserved0"), (0, 32, 16, "c_out"), (0, 48, 16, "reserved1"),
    (1, 0, 16, "h_it"), (1, 16, 16, "n_xt"), (1, 32, 16, "w_valid"), (1, 48, 16, "in_ch_stride"),
    (2, 0, 16, "in_base"), (2, 16, 16, "in_row_stride"), (2, 32, 16, "out_base"), (2, 48, 16, "out_row_stride"),
    (3, 0, 16, "out_ch_stride"), (3, 16, 16, "clear_base"), (3, 32, 32, "clear_len"),
] + [(4 + t // 4, 16 * (t % 4), 16, f"tap{t}") for t in range(16)]
REC_FIELDS = [(0, 0, 32, "bias"), (0, 32, 16, "M"), (0, 48, 6, "S"), (0, 54, 10, "reserved"),
              (1, 0, 24, "n_groups"), (1, 24, 40, "reserved")]


def interesting(r: random.Random, hw: HwConfig, bits: int, old: int) -> int:
    m = (1 << bits) - 1
    cands = [0, 1, 2, m, m - 1, old + 1, old - 1, old * 2, old ^ (1 << r.randrange(bits)), r.getrandbits(bits),
             hw.act_bytes - 1, hw.act_bytes, hw.act_bytes + 1, hw.w_slots, hw.w_slots + 1, hw.ch_cap, hw.ch_cap + 1,
             hw.out_cap, hw.out_cap + 1, hw.max_layers, hw.max_layers + 1, hw.act_log2, hw.act_log2 + 1, 47, 48,
             r.randrange(1, 64)]
    return r.choice(cands) & m


LOAD_KINDS = ["truncate", "tlast_early", "extra", "magic", "version", "lanes", "header", "header", "desc", "desc",
              "desc", "flagbit", "record", "record", "block", "bitflip", "bitflip", "random_beats", "garbage", "intact"]
RUN_KINDS = ["ok", "short", "short_rest", "long", "batch0", "batch_mismatch", "flip", "random_bytes", "no_program",
             "conflict"]


def mutate_program(r: random.Random, hw: HwConfig, prog: Program, good: np.ndarray, kind: str | None = None):
    """(beats, tlast_at or None, description) of one mutated program packet."""
    n = good.size
    sec = sections(prog)
    kind = kind or r.choice(LOAD_KINDS)
    b = good.copy()
    if kind == "truncate":
        return b[: r.randrange(1, n)], None, kind
    if kind == "tlast_early":
        return b, r.randrange(0, n - 1), kind
    if kind == "extra":
        k = r.randint(1, 8)
        extra = [r.getrandbits(64) for _ in range(k)] if r.random() < 0.5 else list(good[:k])
        return np.concatenate([b, np.array(extra, np.uint64)]), None, kind
    if kind == "magic":
        return set_field(b, 0, 0, 32, r.choice([0, 0x5A534B41, 0x5A534B45, r.getrandbits(32)])), None, kind
    if kind == "version":
        return set_field(b, 0, 32, 16, r.choice([0, 2, 0xFFFF, r.getrandbits(16)]) or 3), None, kind
    if kind == "lanes":
        return set_field(b, 0, 48, 8, r.choice([v for v in (0, 1, 2, 4, 8, 16, 32, 255) if v != hw.lanes])), None, kind
    if kind == "header":
        i, lo, bits, nm = r.choice(HEADER_FIELDS)
        v = interesting(r, hw, bits, get_field(b, i, lo, bits))
        return set_field(b, i, lo, bits, v), None, f"{kind}:{nm}={v}"
    if kind == "desc":
        s = r.choice(sec)
        i, lo, bits, nm = r.choice(DESC_FIELDS)
        i += s["desc"]
        v = interesting(r, hw, bits, get_field(b, i, lo, bits))
        return set_field(b, i, lo, bits, v), None, f"{kind}:layer@{s['desc']}:{nm}={v}"
    if kind == "flagbit":  # one flag bit or site-list bit of a descriptor
        s = r.choice(sec)
        b[s["desc"]] ^= np.uint64(1 << r.choice(list(range(8)) + [20, 21]))
        return b, None, kind
    if kind == "record":
        s = r.choice(sec)
        i, lo, bits, nm = r.choice(REC_FIELDS)
        i += s["rec"] + 2 * r.randrange(s["n_rec"])
        v = interesting(r, hw, bits, get_field(b, i, lo, bits))
        return set_field(b, i, lo, bits, v), None, f"{kind}:beat{i}:{nm}={v}"
    if kind == "block":
        s = r.choice([s for s in sec if s["n_blk"]] or sec)
        if not s["n_blk"]:
            return b, None, "intact"
        i = s["blk"] + r.randrange(3 * s["n_blk"])
        for _ in range(r.randint(1, 3)):
            b[i] ^= np.uint64(1 << r.randrange(64))
        return b, None, kind
    if kind == "bitflip":
        for _ in range(r.randint(1, 4)):
            b[r.randrange(n)] ^= np.uint64(1 << r.randrange(64))
        return b, None, kind
    if kind == "random_beats":
        for _ in range(r.randint(1, 4)):
            b[r.randrange(n)] = np.uint64(r.getrandbits(64))
        return b, None, kind
    if kind == "garbage":
        g = np.array([r.getrandbits(64) for _ in range(r.randint(1, 40))], np.uint64)
        if r.random() < 0.5:  # a plausible header in front
            g[: min(4, g.size)] = good[: min(4, g.size)]
        return g, None, kind
    return b, None, "intact"


def safe_to_run(prog: Program, hw: HwConfig) -> bool:
    """A program the loader accepted whose run the golden model predicts exactly: each
    layer reads nothing it writes itself (the golden model computes a whole layer before
    writing it, the RTL writes as it goes), writes every address at most once, has no
    more valid pixels than tiles (w_valid <= n_xt * P) and the run is short."""
    A = hw.act_bytes
    try:
        if predict_cycles(prog, 1) > MAX_RUN_CYCLES:
            return False
    except Exception:
        return False
    for lp in prog.layers:
        d = lp.desc
        if d.w_valid > d.n_xt * d.P:
            return False
        if d.h_it * d.n_xt * d.P * max(1, d.c_out) > 400_000:
            return False
        if d.out:
            continue
        off, w = decode_entries(lp)
        nz_off = np.unique(off[w != 0].astype(np.int64))
        ys = np.arange(d.h_it)
        xs = np.arange(d.w_valid)
        base = (d.in_base + ys[:, None] * d.in_row_stride + xs[None, :]).reshape(-1)
        reads = np.unique((base[:, None] + nz_off[None, :]) % A) if nz_off.size else np.zeros(0, np.int64)
        cs = np.arange(d.c_out)[:, None, None] * d.out_ch_stride
        if d.pool:
            hy, wx = np.arange(d.h_it // 2), np.arange(d.w_valid // 2)
        else:
            hy, wx = ys, xs
        writes = ((d.out_base + cs + hy[None, :, None] * d.out_row_stride + wx[None, None, :]) % A).reshape(-1)
        if np.unique(writes).size != writes.size:
            return False
        if np.intersect1d(reads, writes).size:
            return False
    return True


def random_image_beats(rng: np.random.Generator, prog: Program, batch: int) -> np.ndarray:
    x = rng.integers(0, 256, size=(batch, prog.in_bytes), dtype=np.uint8)
    return pack_image_beats(x, prog.in_bytes)


# ----------------------------------------------------------------------------- bench

class Fuzzer:
    def __init__(self, sb: StreamBench, stats: Stats, r: random.Random, rng: np.random.Generator):
        self.sb, self.stats, self.r, self.rng = sb, stats, r, rng
        self.ok = Oracle(sb)
        self.hw = sb.hw
        self.loaded = None  # name of the valid program the golden model (and RTL) hold
        self.turns: dict = {}

    def record_recovery(self, what: str, cls: str, in0: int, bound: int | None):
        raw, net = self.sb.recovery(in0)
        self.stats.bound(cls, raw, net)
        if bound is not None:
            assert net <= bound, f"{what}: engine idle {net} cycles after the last input beat (bound {bound})"

    def next_kind(self, what: str, kinds: list) -> str:
        """Every kind once (in order), then at random: a short run still covers them all."""
        i = self.turns.get(what, 0)
        self.turns[what] = i + 1
        order = list(dict.fromkeys(kinds))
        return order[i] if i < len(order) else self.r.choice(kinds)

    def load_ok_bound(self) -> int:
        """A good load: the last block's decode, the loader's tail, the activation-memory
        clear (ACT_BYTES / LANES cycles) and the ACK beat."""
        return self.hw.act_bytes // self.hw.lanes + LOAD_OK_EXTRA

    async def ensure(self, entry):
        name, _, prog = entry
        if self.loaded != name or self.ok.g.program is None:
            code, _, in0 = await self.ok.load(encode_program(prog), what=f"load {name}")
            assert code == 0
            self.record_recovery(f"load {name}", "load_ok", in0, self.load_ok_bound())
            self.loaded = name

    async def valid_run(self, entry, what: str):
        name, model, prog = entry
        await self.ensure(entry)
        batch = self.r.randint(1, 2)
        code, _, in0 = await self.ok.run(images(self.rng, model, batch), batch, what=f"{what}: valid run")
        assert code == 0
        t = image_timing(prog)
        # after the last input beat: the rest of its write (LANES = 4), the layers, OUT_LAT
        # and the result beats; idle the cycle after the last one
        exact = max(1, 8 // self.hw.lanes) - 1 + t["compute"] + t["output"] + 1
        raw, net = self.sb.recovery(in0)
        self.stats.bound("run_ok", raw, net)
        assert net == exact, f"{what}: idle {net} cycles after the last input beat, timing predicts {exact}"

    async def load_case(self, entry, case: int):
        name, _, prog = entry
        good = encode_program(prog)
        beats, tl, detail = mutate_program(self.r, self.hw, prog, good, self.next_kind("load", LOAD_KINDS))
        kind = detail.split(":")[0]
        what = f"case {case} ({detail} of {name})"
        code, _, in0 = await self.ok.load(beats, what=what, tlast_at=tl)
        self.stats.case(f"load:{kind}", code)
        if tl is not None and tl < beats.size - 1:
            self.record_recovery(what, "stray", in0, RUN_ERR_BOUND)
        elif code:
            self.record_recovery(what, "load_error", in0, LOAD_ERR_BOUND)
        else:
            self.record_recovery(what, "load_ok", in0, self.load_ok_bound())
        self.loaded = None
        if code == 0:
            p = self.ok.g.program
            same = np.array_equal(beats[: p.n_beats()], good)
            if same:
                self.loaded = name
            elif safe_to_run(p, self.hw):
                bt = random_image_beats(self.rng, p, 1)
                rc, _, _ = await self.ok.run(bt, 1, what=f"{what}: accepted mutant run")
                self.stats.add("accepted_mutants_run")
                self.stats.case("run:accepted_mutant", rc, count=False)
            else:
                self.stats.add("accepted_mutants_not_run")

    async def run_case(self, entry, case: int):
        name, model, prog = entry
        r = self.r
        kind = self.next_kind("run", RUN_KINDS)
        what = f"case {case} (run:{kind} on {name})"
        if kind == "no_program":
            if self.ok.g.program is not None:  # a failing load leaves none
                await self.ok.load(np.array([0], np.uint64), what=f"{what}: bad load")
                self.loaded = None
            code, _, in0 = await self.ok.run(images(self.rng, model, 1), 1, what=what)
            self.stats.case(f"run:{kind}", code)
            self.record_recovery(what, "run_error", in0, RUN_ERR_BOUND)
            return
        if kind == "conflict":
            bad = conflict_program(self.hw)
            await self.ok.load(encode_program(bad), what=f"{what}: conflict program")
            self.loaded = "conflict"
            batch = r.randint(1, 3)
            code, _, in0 = await self.ok.run(random_image_beats(self.rng, bad, batch), batch, what=what)
            self.stats.case(f"run:{kind}", code)
            self.record_recovery(what, "conflict" if batch == 1 else "run_error", in0,
                                 image_timing(bad)["compute"] + 4 if batch == 1 else RUN_ERR_BOUND)
            return
        await self.ensure(entry)
        nb = -(-prog.in_bytes // 8)
        batch = r.randint(1, 3)
        img = images(self.rng, model, batch)
        tl = None
        if kind == "short":
            img = img[: r.randrange(1, img.size)]
        elif kind == "short_rest":
            tl = r.randrange(0, img.size - 1)
        elif kind == "long":
            img = np.concatenate([img, images(self.rng, model, 1)[: r.randint(1, nb)]])
        elif kind == "batch0":
            batch = 0
        elif kind == "batch_mismatch":
            batch = r.choice([b for b in (1, 2, 3, 4, 65535) if b * nb != img.size])
        elif kind == "flip":
            for _ in range(r.randint(1, 8)):
                img[r.randrange(img.size)] ^= np.uint64(1 << r.randrange(64))
        elif kind == "random_bytes":
            img = random_image_beats(self.rng, prog, batch)
        code, _, in0 = await self.ok.run(img, batch, what=what, tlast_at=tl)
        self.stats.case(f"run:{kind}", code)
        if tl is not None:
            self.record_recovery(what, "stray", in0, RUN_ERR_BOUND)
        elif code:
            self.record_recovery(what, "run_error", in0, RUN_ERR_BOUND)

    async def stray_case(self, entry, case: int):
        r = self.r
        n = r.choice([1, 1, 2, 3, r.randint(4, 40)])
        beats = np.array([r.getrandbits(64) for _ in range(n)], np.uint64)
        code, _, in0 = await self.ok.stray(beats, what=f"case {case} (stray)")
        self.stats.case("stray", code)
        self.record_recovery(f"case {case} (stray)", "stray", in0, RUN_ERR_BOUND)


@cocotb.test()
async def test_fuzz_cases(dut):
    """Mutated program / image / stray packets, each followed by a valid program and run."""
    r = random.Random(SEED)
    rng = np.random.default_rng(SEED)
    sb = StreamBench(dut, r)
    await sb.reset()
    stats = Stats("stream_fuzz", params=dict(sb.params, seed=SEED))
    fz = Fuzzer(sb, stats, r, rng)
    pool = build_pool(sb.hw, r, rng)
    stats.extra["programs"] = [f"{n}:{p.n_beats()} beats" for n, _, p in pool]
    for case in range(N_CASES):
        entry = pool[(case // 6) % len(pool)]
        sb.set_flow(random_flow(r), random_flow(r))
        u = r.random()
        if u < 0.6:
            await fz.load_case(entry, case)
        elif u < 0.92:
            await fz.run_case(entry, case)
        else:
            await fz.stray_case(entry, case)
        await fz.valid_run(entry, f"case {case}")
        if case % 10 == 9:
            stats.write()
    await sb.settle()
    stats.write()
    dut._log.info("stream fuzz: %d cases, recovery %s", stats.cases, stats.recovery)


@cocotb.test()
async def test_command_with_stray_beat(dut):
    """docs/hardware.md: a command written in the same cycle as a stray beat wins, the
    beat is taken by the command. The first beat of a program / image packet is offered
    exactly in the cycle of the LOAD / RUN pulse."""
    r = random.Random(SEED)
    rng = np.random.default_rng(SEED)
    sb = StreamBench(dut, r)
    await sb.reset()
    ok = Oracle(sb)
    name, model, prog = build_pool(sb.hw, r, rng, n_random=0)[0]
    beats = encode_program(prog)
    for trial in range(3):
        await sb.wait_idle_sampled()
        sb.hold_until_ctrl = True
        sb.send(beats)
        out0, in0 = len(sb.out_log), len(sb.in_log)
        await sb.write("CTRL", CTRL["LOAD"])
        pk = await sb.wait_packets(out0, 1, 200_000)
        sb.account()
        ok.compare(f"trial {trial}: LOAD", data_of(pk[0]), ok.g.load(beats))
        first = sb.in_log[in0]
        assert sb.state_enter[1] == first.cycle - 1 or sb.state_enter[1] <= first.cycle, "beat before the command"
        await ok.check_status(f"trial {trial}", 0, None, valid=True)
        batch = r.randint(1, 3)
        img = images(rng, model, batch)
        await sb.write("BATCH", batch)
        sb.hold_until_ctrl = True
        sb.send(img)
        out0 = len(sb.out_log)
        await sb.write("CTRL", CTRL["RUN"])
        pk = await sb.wait_packets(out0, 1, 500_000)
        await sb.wait_idle_sampled()
        sb.account()
        ok.compare(f"trial {trial}: RUN", data_of(pk[0]), ok.g.run(img, batch))
        await ok.check_status(f"trial {trial}", 0, None, valid=True)
        await ok.counters(f"trial {trial}", batch)
    await sb.settle()


# ----------------------------------------------------------------------------- pytest runner

# the CI case, then the --fuzz campaign (marked slow)
RUNS = [builds.param("verilator-top-L8", 60),
        builds.param("verilator-top-L8", 600, slow=True), builds.param("verilator-top-L4", 250, slow=True),
        builds.param("verilator-top-L16", 250, slow=True), builds.param("icarus-top-L8", 60, slow=True)]


@pytest.mark.parametrize("build,cases", RUNS)
def test_stream_fuzz(build, cases, tmp_path):
    data = builds.run_with_stats(build, __file__, {"ZEROSKIP_FUZZ_CASES": str(cases)}, tmp_path,
                                 f"stream{cases}")
    d = data["stream_fuzz"]
    assert d["cases"] == cases
    codes = {c for kind in d["kinds"].values() for c in kind}
    # every error the stream can produce was provoked, and valid cases succeeded
    want = {"OK", "BAD_MAGIC", "BAD_VERSION", "CONFIG_MISMATCH", "TRUNCATED", "TOO_LONG", "BAD_LAYER",
            "INPUT_SHORT", "UNEXPECTED"}
    if cases >= 200:
        want |= {"CAPACITY", "NO_PROGRAM", "INPUT_LONG", "BANK_CONFLICT"}
    assert want <= codes, f"not provoked: {sorted(want - codes)}"
