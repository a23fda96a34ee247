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
from .program import (
    F_AVG,
    F_MAXRED,
    F_POOLSITES,
    F_SCRUB,
    MODE_DENSE,
    MODE_REDUCE,
    MODE_SITES,
    HwConfig,
    LayerProgram,
    Program,
    ProgramError,
    decode_entries,
    decode_program,
)

E = C.ERROR_CODES
T = C.TIMING
AVG_RECIP = C.AVG_RECIP


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
    if (d.Q == 1 and not d.xs2) or lp.n_slots == 0:
        return False
    P, Q = d.P, d.Q
    w = wts.reshape(-1, Q)
    o = off.astype(np.int64).reshape(-1, Q)
    rel = (o[:, :, None] + d.x_step * np.arange(P)[None, None, :]) % act_bytes  # (G, Q, P)
    rel = rel.reshape(rel.shape[0], Q * P)
    nzl = np.repeat(w != 0, P, axis=1)
    bank = rel % lanes
    # pairwise within each group: same bank, different address, both non-zero
    same_bank = bank[:, :, None] == bank[:, None, :]
    diff_addr = rel[:, :, None] != rel[:, None, :]
    both = nzl[:, :, None] & nzl[:, None, :]
    return bool(np.any(same_bank & diff_addr & both))


@dataclass(frozen=True)
class _Err:
    code: int
    beat: int


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
        beats (results, or results so far plus an error beat). Counters in ``self.counters``;
        ``self.image_cycles`` lists each computed image's ``CYCLES − STALL``."""
        beats = np.asarray(beats, np.uint64)
        tl = (int(beats.size) if tlast_at is None else int(tlast_at) + 1) - 1  # the TLAST beat
        self.counters = {"CYCLES": 0, "STALL": 0, "COMPUTE": 0, "MACS": 0}
        self.image_cycles: list[int] = []
        self.image_layers: list[list[tuple[int, int]]] = []  # per image: (cycles, MACs) per layer
        if self.program is None:
            return self._error(E["NO_PROGRAM"], 0)
        if batch < 1:
            return self._error(E["INPUT_SHORT"], 0)
        prog = self.program
        out: list[int] = []
        pos = 0
        for i in range(batch):
            final = i == batch - 1
            stream_err = None
            if prog.input_mode == MODE_SITES:
                # a site packet is checked beat by beat as it streams in (n, then per
                # beat TLAST before the site's range); sites before the failing beat are written
                if tl < pos:
                    return self._error(E["INPUT_SHORT"], tl, out)
                n = int(beats[pos]) & 0xFF
                if n > prog.n_max:
                    return self._error(E["BAD_SITES"], pos, out)
                last = pos + n
                if tl < last or (tl == last and not final):
                    stream_err = _Err(E["INPUT_SHORT"], tl)
                elif final and tl > last:
                    stream_err = _Err(E["INPUT_LONG"], last)
            else:
                last = pos + in_beats(prog) - 1
                if tl < last or (tl == last and not final):
                    return self._error(E["INPUT_SHORT"], tl, out)
                if final and tl > last:
                    return self._error(E["INPUT_LONG"], last, out)
            img = beats[pos:min(last, tl) + 1]
            res = self._image(prog, img, pos, stream_err)
            if isinstance(res, _Err):
                return self._error(res.code, res.beat, out)
            vals_out, cyc, comp, macs = res
            self.counters["CYCLES"] += cyc
            self.counters["COMPUTE"] += comp
            self.counters["MACS"] += macs
            self.image_cycles.append(cyc)
            vals = np.zeros(2 * out_beats(prog), np.int64)
            vals[: prog.n_out] = vals_out
            u = (vals & 0xFFFFFFFF).astype(np.uint64)
            out.extend(int(x) for x in (u[0::2] | (u[1::2] << np.uint64(32))))
            pos = last + 1
        self.status_error = 0
        return np.array(out, np.uint64)

    def run_images(self, packed) -> tuple[np.ndarray, dict]:
        """Convenience: packed images → (int32 results (N, n_out), counters). ``packed`` is
        uint8 (N, in_bytes) for dense input modes, or a list of per-image beat arrays."""
        prog = self._need_program()
        if isinstance(packed, np.ndarray) and packed.dtype == np.uint8 and packed.ndim == 2:
            beats = pack_image_beats(packed, prog.in_bytes)
            n = packed.shape[0]
        else:
            parts = [np.asarray(p, np.uint64) for p in packed]
            beats = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
            n = len(parts)
        resp = self.run(beats, n)
        if self.status_error:
            raise RuntimeError(f"golden engine: {C.error_text(self.status_error)}")
        return unpack_results(resp, n, prog.n_out), dict(self.counters)

    # -- internals --------------------------------------------------------------------
    def _need_program(self) -> Program:
        if self.program is None:
            raise RuntimeError("no program loaded")
        return self.program

    def _error(self, code: int, beat: int, out: list | None = None) -> np.ndarray:
        self.status_error = code
        return np.array(list(out or []) + [response_beat(C.ERR_MAGIC, code, beat)], np.uint64)

    def _image(self, prog: Program, img: np.ndarray, first_beat: int, stream_err: _Err | None = None):
        """Input phase + layers for one image. Returns (results, cycles, compute cycles, MACs)
        or an :class:`_Err`. ``stream_err``: a TLAST error of a site packet, reported when
        its beat is reached (the sites before it are written)."""
        A = self.hw.act_bytes
        act = self.act
        lists: list[list[list[int]]] = [[], []]  # site lists A and B: [y, x, n]
        l0 = prog.layers[0].desc
        if prog.input_mode == MODE_DENSE:
            data = img.astype("<u8").view(np.uint8)[: prog.in_bytes].view(np.int8)
            act[(prog.in_base + np.arange(prog.in_bytes)) % A] = data
            t_in = img.size * max(1, C.STREAM_BYTES // prog.lanes)
        elif prog.input_mode == MODE_REDUCE:
            data = img.astype("<u8").view(np.uint8)[: prog.in_bytes].view(np.int8).copy()
            rs, p = l0.in_row_stride, prog.pad
            pos = np.arange(prog.in_bytes)
            r = pos % max(1, l0.in_ch_stride)
            yy, xx = r // max(1, rs), r % max(1, rs)
            interior = (yy >= p) & (yy < p + l0.h_it) & (xx >= p) & (xx < p + l0.w_valid)
            active = interior & (data.astype(np.int64) > prog.threshold)
            keep = np.flatnonzero(active)[: prog.n_max]
            kept = np.zeros(prog.in_bytes, bool)
            kept[keep] = True
            data[interior & ~kept] = 0
            act[(prog.in_base + pos) % A] = data
            lists[0] = [[int(yy[k]) - p, int(xx[k]) - p, 1] for k in keep]
            t_in = img.size * C.STREAM_BYTES
        else:
            n = int(img[0]) & 0xFF
            rs, cs, p = l0.in_row_stride, l0.in_ch_stride, prog.pad
            interior = prog.in_base + p * rs + p
            if stream_err is not None and stream_err.beat == first_beat:
                return stream_err
            for j in range(n):
                if stream_err is not None and stream_err.beat == first_beat + 1 + j:
                    return stream_err
                b = int(img[1 + j])
                y, x = b & 0xFF, (b >> 8) & 0xFF
                if y >= l0.h_it or x >= l0.w_valid:
                    return _Err(E["BAD_SITES"], first_beat + 1 + j)
                for c in range(prog.c_in):
                    v = (b >> (16 + 8 * c)) & 0xFF
                    act[(interior + c * cs + y * rs + x) % A] = v - 256 if v & 0x80 else v
                lists[0].append([y, x, 1])
            if stream_err is not None:
                return stream_err
            t_in = 1 + n * prog.c_in
        # producer of the previous map, for SCRUB: (base, ch_stride, row_stride, channels, list)
        prev = None
        if prog.input_mode == MODE_SITES:
            prev = (prog.in_base + prog.pad * l0.in_row_stride + prog.pad, l0.in_ch_stride, l0.in_row_stride,
                    prog.c_in, 0)
        compute = 0
        macs = 0
        result = None
        per_layer = []
        for li, lp in enumerate(prog.layers):
            d = lp.desc
            if self._conflict[li]:
                return _Err(E["BANK_CONFLICT"], first_beat)
            off, w = self._decoded[li]
            cyc = T["LAYER_SETUP"] + -(-d.clear_len // prog.lanes) + T["FILL"]
            if d.clear_len:
                act[(d.clear_base + np.arange(d.clear_len)) % A] = 0
            groups = np.array([ch.n_groups for ch in lp.channels])
            nz_row = np.add.reduceat(w != 0, np.concatenate([[0], np.cumsum(groups * d.Q)[:-1]])) \
                if lp.n_slots else np.zeros(d.c_out, np.int64)
            if d.sites:
                if d.flags & F_POOLSITES:
                    src = lists[d.in_list]
                    cyc += len(src)
                    cells: dict = {}
                    for y, x, _ in src:
                        cy, cx = y >> 1, x >> 1
                        if cy < d.h_it and cx < d.w_valid:
                            cells[(cy, cx)] = cells.get((cy, cx), 0) + 1
                    lists[d.out_list] = [[cy, cx, cnt] for (cy, cx), cnt in cells.items()]
                    tiles, wl = _SiteTiles(d, lists[d.out_list], 1), d.out_list
                else:
                    tiles, wl = _SiteTiles(d, lists[d.in_list], 0), d.in_list
                nxt = (d.out_base, d.out_ch_stride, d.out_row_stride, d.c_out, wl)
            else:
                tiles, nxt = _GridTiles(d), None
            cyc += int(groups.sum()) * tiles.n_tiles
            macs += int(nz_row.sum()) * tiles.n_pixels
            r = self._layer(lp, off, w, tiles)
            if d.out:
                result = r
            if d.flags & F_SCRUB and prev is not None:
                base, cs_, rs_, nch, lid = prev
                cyc += nch * len(lists[lid])
                for y, x, _ in lists[lid]:
                    act[(base + np.arange(nch) * cs_ + y * rs_ + x) % A] = 0
            prev = nxt
            compute += cyc
            per_layer.append((cyc, macs - sum(m for _, m in per_layer)))
        self.image_layers.append(per_layer)
        t_out = T["OUT_LAT"] + out_beats(prog)
        return result, t_in + compute + t_out, compute, macs

    def _layer(self, lp: LayerProgram, off: np.ndarray, w: np.ndarray, tiles):
        """One layer over the output pixels of ``tiles`` (a :class:`_GridTiles` or a
        :class:`_SiteTiles`: the iteration source is the only difference between grid and
        SITES layers). Reads every channel's pixels first, then writes (the compiler never
        lets a layer's output overlap its input). Returns the OUT layer's int32 results."""
        if tiles.n_tiles == 0:
            return None
        A = self.hw.act_bytes
        act = self.act
        d = lp.desc
        base0 = tiles.origins                       # (N,) window origin of every output pixel
        pos = 0
        outs = []
        for c, ch in enumerate(lp.channels):
            base = base0 + c * d.in_c_step
            m = ch.n_groups * d.Q
            o = off[pos:pos + m].astype(np.int64)
            wv = w[pos:pos + m].astype(np.int64)
            pos += m
            nz = wv != 0
            o, wv = o[nz], wv[nz]
            a = act[(base[:, None] + o[None, :]) % A].astype(np.int64) if o.size else None
            if d.flags & F_MAXRED:                   # the largest activation of the window; none: -128
                y = a.max(axis=1) if a is not None else np.full(base.shape, -128, np.int64)
            else:
                acc = a @ wv if a is not None else np.zeros(base.shape, np.int64)
                if d.flags & F_AVG:                  # the mean of the cell's active sites, no bias
                    y = (_wrap32(acc) * tiles.recip + (1 << 15)) >> 16
                else:
                    acc = _wrap32(acc + ch.bias)
                    if d.out:
                        outs.append(acc[0])
                        continue
                    y = (acc * ch.mult + (1 << (ch.shift - 1))) >> ch.shift
            if d.relu:
                y = np.maximum(y, 0)
            outs.append(np.clip(y, -128, 127))
        if d.out:
            return np.array(outs, np.int64)
        for c, y in enumerate(outs):
            addr, v = tiles.place(y)
            act[(d.out_base + c * d.out_ch_stride + addr) % A] = v.astype(np.int8)
        return None


class _GridTiles:
    """The grid iteration: ``h_it`` rows of ``n_xt`` tiles of P pixels, ``x_step`` apart;
    outputs at (y, x) for x < ``w_valid``, or 2x2 max-pooled with POOL."""

    def __init__(self, d):
        self.d = d
        self.n_tiles = d.n_tiles
        self.n_pixels = d.h_it * d.w_valid
        self.width = d.n_xt * d.P
        ys = np.arange(d.h_it)[:, None]
        self.origins = (d.in_base + ys * d.in_row_stride + d.x_step * np.arange(self.width)[None, :]).reshape(-1)

    def place(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(write offset, value) of a channel's outputs ``y`` (one per pixel)."""
        d = self.d
        y = y.reshape(d.h_it, self.width)
        if d.pool:
            hp, wp = d.h_it // 2, d.w_valid // 2
            v = y[: 2 * hp, : 2 * wp].reshape(hp, 2, wp, 2).max(axis=(1, 3))
        else:
            hp, wp = d.h_it, d.w_valid
            v = y[:, :wp]
        addr = np.arange(hp)[:, None] * d.out_row_stride + np.arange(wp)[None, :]
        return addr.reshape(-1), v.reshape(-1)


class _SiteTiles:
    """The SITES iteration: one tile of one pixel per site ``[y, x, n]`` of the list,
    reading the window at ``(y << sh, x << sh)`` (``sh`` = 1: the 2x2 cell of a pooled
    site) and writing at (y, x); ``n`` (the cell's active sites) picks the AVG reciprocal."""

    def __init__(self, d, sites: list, sh: int):
        st = np.array(sites, np.int64).reshape(-1, 3)
        self.n_tiles = self.n_pixels = len(st)
        self.origins = d.in_base + (st[:, 0] << sh) * d.in_row_stride + (st[:, 1] << sh)
        self.recip = np.array(AVG_RECIP, np.int64)[np.minimum(st[:, 2], 4)]
        self._addr = st[:, 0] * d.out_row_stride + st[:, 1]

    def place(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._addr, y


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
