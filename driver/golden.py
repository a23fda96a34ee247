"""Golden model of the engine: numpy only, bit-exact and cycle-exact.

:class:`GoldenEngine` behaves like the overlay at its stream ports: ``load`` takes the
program beats and answers the ACK beat, ``run`` takes a batch of image beats and answers
the result beats (or an error beat), with the same checks, error codes, activation-memory
state and counters (``CYCLES − STALL``, ``COMPUTE``, ``MACS``) as the RTL. It is the
``model`` backend and the oracle of the RTL tests.

Timing follows docs/hardware.md "Timing"; constants come from contract.json.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import contract as C
from .program import HwConfig, LayerProgram, Program, ProgramError, decode_entries, decode_program

E = C.ERROR_CODES
T = C.TIMING


def _wrap32(x: np.ndarray) -> np.ndarray:
    return ((x.astype(np.int64) + (1 << 31)) % (1 << 32)) - (1 << 31)


def response_beat(magic: int, code: int, info: int) -> int:
    return (magic & 0xFFFFFFFF) | ((code & 0xFF) << 32) | ((info & 0xFFFFFF) << 40)


def parse_response(beat: int) -> tuple[int, int, int]:
    """(magic, code, info) of an ACK or error beat."""
    beat = int(beat)
    return beat & 0xFFFFFFFF, (beat >> 32) & 0xFF, (beat >> 40) & 0xFFFFFF


@dataclass(frozen=True)
class LayerTiming:
    setup: int
    clear: int
    issues: int
    fill: int
    macs: int

    @property
    def total(self) -> int:
        return self.setup + self.clear + self.issues + self.fill


def in_beats(prog: Program) -> int:
    return -(-prog.in_bytes // C.STREAM_BYTES)


def out_beats(prog: Program) -> int:
    return -(-prog.n_out // 2)


def layer_timing(lp: LayerProgram, lanes: int) -> LayerTiming:
    d = lp.desc
    groups = sum(ch.n_groups for ch in lp.channels)
    nz = np.count_nonzero(decode_entries(lp)[1])
    return LayerTiming(setup=T["LAYER_SETUP"], clear=-(-d.clear_len // lanes), issues=groups * d.n_tiles,
                       fill=T["FILL"], macs=int(nz) * d.h_it * d.w_valid)


def image_timing(prog: Program) -> dict:
    """Cycle budget of one image: input, per-layer, output, total; MACs."""
    lanes = prog.lanes
    beat_cyc = max(1, C.STREAM_BYTES // lanes)
    layers = [layer_timing(lp, lanes) for lp in prog.layers]
    t_in = in_beats(prog) * beat_cyc
    t_out = T["OUT_LAT"] + out_beats(prog)
    compute = sum(lt.total for lt in layers)
    return {"input": t_in, "layers": layers, "compute": compute, "output": t_out,
            "total": t_in + compute + t_out, "macs": sum(lt.macs for lt in layers)}


def predict_cycles(prog: Program, batch: int = 1) -> int:
    """``CYCLES − STALL`` of a RUN of ``batch`` images."""
    return batch * image_timing(prog)["total"]


def _conflicts(lp: LayerProgram, off: np.ndarray, wts: np.ndarray, act_bytes: int, lanes: int) -> bool:
    """True when some group has two non-zero-weight lanes in one bank at different addresses."""
    d = lp.desc
    if d.Q == 1 or lp.n_slots == 0:
        return False
    P, Q = d.P, d.Q
    w = wts.reshape(-1, Q)
    o = off.astype(np.int64).reshape(-1, Q)
    rel = (o[:, :, None] + np.arange(P)[None, None, :]) % act_bytes  # (G, Q, P)
    rel = rel.reshape(rel.shape[0], Q * P)
    nzl = np.repeat(w != 0, P, axis=1)
    bank = rel % lanes
    # pairwise within each group: same bank, different address, both non-zero
    same_bank = bank[:, :, None] == bank[:, None, :]
    diff_addr = rel[:, :, None] != rel[:, None, :]
    both = nzl[:, :, None] & nzl[:, None, :]
    return bool(np.any(same_bank & diff_addr & both))


class GoldenEngine:
    """Stream-level model of one overlay."""

    def __init__(self, hw: HwConfig | None = None):
        self.hw = hw or HwConfig()
        self.act = np.zeros(self.hw.act_bytes, np.int8)
        self.program: Program | None = None
        self._decoded: list[tuple[np.ndarray, np.ndarray]] = []
        self._conflict: list[bool] = []
        self.counters = {"CYCLES": 0, "STALL": 0, "COMPUTE": 0, "MACS": 0}
        self.status_error = 0

    # -- commands ---------------------------------------------------------------------
    def load(self, beats: np.ndarray, tlast_at: int | None = None) -> np.ndarray:
        """LOAD: returns the one-beat response (ACK with an error code)."""
        beats = np.asarray(beats, np.uint64)
        self.program = None
        try:
            prog = decode_program(beats, self.hw, tlast_at=tlast_at)
        except ProgramError as e:
            self.status_error = e.code
            return np.array([response_beat(C.ACK_MAGIC, e.code, e.beat)], np.uint64)
        self.program = prog
        self._decoded = [decode_entries(lp) for lp in prog.layers]
        self._conflict = [_conflicts(lp, off, w, self.hw.act_bytes, self.hw.lanes)
                          for lp, (off, w) in zip(prog.layers, self._decoded)]
        self.act[:] = 0
        self.status_error = 0
        n = beats.size if tlast_at is None else tlast_at + 1
        return np.array([response_beat(C.ACK_MAGIC, 0, n)], np.uint64)

    def run(self, beats: np.ndarray, batch: int, tlast_at: int | None = None) -> np.ndarray:
        """RUN of ``batch`` images from the image packet ``beats``; returns the response
        beats (results, or results so far plus an error beat). Counters in ``self.counters``."""
        beats = np.asarray(beats, np.uint64)
        n_in = int(beats.size) if tlast_at is None else int(tlast_at) + 1
        self.counters = {"CYCLES": 0, "STALL": 0, "COMPUTE": 0, "MACS": 0}
        if self.program is None:
            return self._error(E["NO_PROGRAM"], 0)
        if batch < 1:
            return self._error(E["INPUT_SHORT"], 0)
        prog = self.program
        ib = in_beats(prog)
        timing = image_timing(prog)
        out: list[int] = []
        for i in range(batch):
            first, last = i * ib, (i + 1) * ib - 1
            if n_in - 1 < last:  # TLAST (end of the data) inside or before this image
                return self._error(E["INPUT_SHORT"], n_in - 1, out)
            if i == batch - 1 and n_in - 1 > last:
                return self._error(E["INPUT_LONG"], last, out)
            img = beats[first:last + 1].astype("<u8").view(np.uint8)[: prog.in_bytes].view(np.int8)
            idx = (prog.in_base + np.arange(prog.in_bytes)) % self.hw.act_bytes
            self.act[idx] = img
            res = self._compute(prog)
            if res is None:
                return self._error(E["BANK_CONFLICT"], first, out)
            self.counters["CYCLES"] += timing["total"]
            self.counters["COMPUTE"] += timing["compute"]
            self.counters["MACS"] += timing["macs"]
            vals = np.zeros(2 * out_beats(prog), np.int64)
            vals[: prog.n_out] = res
            u = (vals & 0xFFFFFFFF).astype(np.uint64)
            out.extend(int(x) for x in (u[0::2] | (u[1::2] << np.uint64(32))))
        self.status_error = 0
        return np.array(out, np.uint64)

    def run_images(self, packed: np.ndarray) -> tuple[np.ndarray, dict]:
        """Convenience: packed uint8 images (N, in_bytes) → (int32 results (N, n_out), counters)."""
        prog = self._need_program()
        beats = pack_image_beats(packed, prog.in_bytes)
        resp = self.run(beats, packed.shape[0])
        if self.status_error:
            raise RuntimeError(f"golden engine: {C.error_text(self.status_error)}")
        return unpack_results(resp, packed.shape[0], prog.n_out), dict(self.counters)

    # -- internals --------------------------------------------------------------------
    def _need_program(self) -> Program:
        if self.program is None:
            raise RuntimeError("no program loaded")
        return self.program

    def _error(self, code: int, beat: int, out: list | None = None) -> np.ndarray:
        self.status_error = code
        return np.array(list(out or []) + [response_beat(C.ERR_MAGIC, code, beat)], np.uint64)

    def _compute(self, prog: Program) -> np.ndarray | None:
        A = self.hw.act_bytes
        act = self.act
        result = None
        for li, lp in enumerate(prog.layers):
            if self._conflict[li]:
                return None
            d = lp.desc
            off, w = self._decoded[li]
            if d.clear_len:
                act[(d.clear_base + np.arange(d.clear_len)) % A] = 0
            P, Q = d.P, d.Q
            W_it = d.n_xt * P
            ys = np.arange(d.h_it)
            xs = np.arange(W_it)
            base = d.in_base + ys[:, None] * d.in_row_stride + xs[None, :]  # (H, W)
            pos = 0
            outs = []
            for ch in lp.channels:
                m = ch.n_groups * Q
                o = off[pos:pos + m].astype(np.int64)
                wv = w[pos:pos + m].astype(np.int64)
                pos += m
                nz = wv != 0
                o, wv = o[nz], wv[nz]
                if o.size:
                    a = act[(base[:, :, None] + o[None, None, :]) % A].astype(np.int64)
                    acc = a @ wv
                else:
                    acc = np.zeros(base.shape, np.int64)
                acc = _wrap32(acc + ch.bias)
                if d.out:
                    outs.append(acc[0, 0])
                    continue
                y = (acc * ch.mult + (1 << (ch.shift - 1))) >> ch.shift
                if d.relu:
                    y = np.maximum(y, 0)
                outs.append(np.clip(y, -128, 127))
            if d.out:
                result = np.array(outs, np.int64)
                continue
            for c, y in enumerate(outs):
                cb = d.out_base + c * d.out_ch_stride
                if d.pool:
                    hp, wp = d.h_it // 2, d.w_valid // 2
                    v = y[: 2 * hp, : 2 * wp].reshape(hp, 2, wp, 2).max(axis=(1, 3))
                    addr = cb + np.arange(hp)[:, None] * d.out_row_stride + np.arange(wp)[None, :]
                else:
                    v = y[:, : d.w_valid]
                    addr = cb + ys[:, None] * d.out_row_stride + np.arange(d.w_valid)[None, :]
                act[addr.reshape(-1) % A] = v.reshape(-1).astype(np.int8)
        return result


def pack_image_beats(packed: np.ndarray, in_bytes: int) -> np.ndarray:
    """uint8 images (N, in_bytes) → uint64 beats, each image padded to whole beats."""
    packed = np.asarray(packed, np.uint8)
    if packed.ndim != 2 or packed.shape[1] != in_bytes:
        raise ValueError(f"packed images must be (N, {in_bytes}) uint8, got {packed.shape}")
    nb = -(-in_bytes // C.STREAM_BYTES)
    buf = np.zeros((packed.shape[0], nb * C.STREAM_BYTES), np.uint8)
    buf[:, :in_bytes] = packed
    return buf.reshape(-1).view("<u8").astype(np.uint64)


def unpack_results(beats: np.ndarray, batch: int, n_out: int) -> np.ndarray:
    """Result beats → int32 (batch, n_out)."""
    nb = -(-n_out // 2)
    beats = np.asarray(beats, np.uint64)
    if beats.size != batch * nb:
        raise ValueError(f"expected {batch * nb} result beats for {batch} images, got {beats.size}")
    vals = beats.astype("<u8").view(np.int32).reshape(batch, 2 * nb)
    return vals[:, :n_out].copy()
