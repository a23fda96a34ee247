"""The program stream: dataclasses, encoder and a decoder that performs the engine's
load checks (docs/hardware.md, "Program packet" and "Checks on load").

numpy only. The decoder is what the golden model loads, so a malformed program is
rejected here with the same error code the RTL reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from . import contract as C
from .errors import ProgramError

HEADER_BEATS = C.PROGRAM["header_beats"]
LAYER_BEATS = C.PROGRAM["layer_beats"]
CHANNEL_BEATS = C.PROGRAM["channel_beats"]
BLOCK_BEATS = C.PROGRAM["block_beats"]
BLOCK_ENTRIES = C.PROGRAM["block_entries"]
MAX_RUN = C.PROGRAM["max_run"]
GROUP_END = C.PROGRAM["group_end"]
N_TAPS = 16  # tap_offset table entries per layer

F_RELU = C.LAYER_FLAGS["RELU"]
F_POOL = C.LAYER_FLAGS["POOL"]
F_OUT = C.LAYER_FLAGS["OUT"]
F_SITES = C.LAYER_FLAGS["SITES"]
F_MAXRED = C.LAYER_FLAGS["MAXRED"]
F_AVG = C.LAYER_FLAGS["AVG"]
F_POOLSITES = C.LAYER_FLAGS["POOLSITES"]
F_SCRUB = C.LAYER_FLAGS["SCRUB"]
# POOLSITES layers: pooled grid (h_it, w_valid) at most this many rows and columns
# (the engine's cell map is addressed by 6-bit cell coordinates)
POOLSITES_MAX = 64
ALL_FLAGS = F_RELU | F_POOL | F_OUT | F_SITES | F_MAXRED | F_AVG | F_POOLSITES | F_SCRUB
MODE_DENSE, MODE_REDUCE, MODE_SITES = (C.INPUT_MODES[k] for k in ("DENSE", "REDUCE", "SITES"))
MAX_SITE_CHANNELS = 6




@dataclass(frozen=True)
class HwConfig:
    """Build-time parameters of an overlay."""

    lanes: int = C.DEFAULTS["LANES"]
    act_bytes: int = C.DEFAULTS["ACT_BYTES"]
    w_slots: int = C.DEFAULTS["W_SLOTS"]
    ch_cap: int = C.DEFAULTS["CH_CAP"]
    out_cap: int = C.DEFAULTS["OUT_CAP"]
    max_layers: int = C.DEFAULTS["MAX_LAYERS"]
    site_cap: int = C.DEFAULTS["SITE_CAP"]

    def __post_init__(self) -> None:
        if self.lanes not in C.LANES_CHOICES:
            raise ValueError(f"LANES must be one of {', '.join(map(str, C.LANES_CHOICES))}, got {self.lanes}")
        if self.act_bytes & (self.act_bytes - 1) or not (self.lanes * 16 <= self.act_bytes <= 65536):
            raise ValueError(f"ACT_BYTES must be a power of two ≤ 65536, got {self.act_bytes}")
        if self.w_slots % self.lanes:
            raise ValueError(f"W_SLOTS must be a multiple of LANES, got {self.w_slots}")

    @property
    def lanes_log2(self) -> int:
        return self.lanes.bit_length() - 1

    @property
    def act_log2(self) -> int:
        return self.act_bytes.bit_length() - 1

    def unbounded(self) -> HwConfig:
        """The same LANES, activation memory and sparse-pixel support with every other
        capacity far beyond any xc7z020 build: for the cycle count of a program that does
        not fit (cycles do not depend on the capacities). Not a buildable overlay."""
        return replace(self, w_slots=1 << 22, ch_cap=1 << 16, out_cap=1 << 16, max_layers=255)

    def to_dict(self) -> dict:
        return {"lanes": self.lanes, "act_bytes": self.act_bytes, "w_slots": self.w_slots,
                "ch_cap": self.ch_cap, "out_cap": self.out_cap, "max_layers": self.max_layers,
                "site_cap": self.site_cap}

    @classmethod
    def from_dict(cls, d: dict) -> HwConfig:
        kw = {k: int(d[k]) for k in ("lanes", "act_bytes", "w_slots", "ch_cap", "out_cap", "max_layers")}
        if "site_cap" in d:
            kw["site_cap"] = int(d["site_cap"])
        return cls(**kw)


@dataclass(frozen=True)
class LayerDesc:
    flags: int
    p_log2: int
    q_log2: int
    tb: int
    c_out: int
    h_it: int
    n_xt: int
    w_valid: int
    in_ch_stride: int
    in_base: int
    in_row_stride: int
    out_base: int
    out_row_stride: int
    out_ch_stride: int
    clear_base: int = 0
    clear_len: int = 0
    tap_offset: tuple = (0,) * N_TAPS
    in_list: int = 0
    out_list: int = 0
    xs2: int = 0        # input pixel step 2 (stride-2 columns)
    in_c_step: int = 0  # input base advance per output channel (depthwise layers)

    @property
    def x_step(self) -> int:
        return 2 if self.xs2 else 1

    @property
    def P(self) -> int:
        return 1 << self.p_log2

    @property
    def Q(self) -> int:
        return 1 << self.q_log2

    @property
    def relu(self) -> bool:
        return bool(self.flags & F_RELU)

    @property
    def pool(self) -> bool:
        return bool(self.flags & F_POOL)

    @property
    def out(self) -> bool:
        return bool(self.flags & F_OUT)

    @property
    def sites(self) -> bool:
        return bool(self.flags & F_SITES)

    @property
    def n_tiles(self) -> int:
        return self.h_it * self.n_xt


@dataclass(frozen=True)
class ChannelRec:
    bias: int
    mult: int
    shift: int
    n_groups: int


@dataclass(frozen=True, eq=False)
class LayerProgram:
    """One layer: descriptor, one record per output channel, and its stream entries as
    codes (uint8: runs 0..14, 15 = group end) and int8 weights; the entries fill
    ``n_slots = sum(n_groups) * Q`` weight-store slots."""

    desc: LayerDesc
    channels: tuple
    codes: np.ndarray
    weights: np.ndarray

    @property
    def n_entries(self) -> int:
        """Stream entries (sent in blocks of 16)."""
        return int(self.codes.size)

    @property
    def n_slots(self) -> int:
        return sum(ch.n_groups for ch in self.channels) * self.desc.Q


@dataclass(frozen=True, eq=False)
class Program:
    lanes: int
    in_base: int
    in_bytes: int
    n_out: int
    layers: tuple
    act_log2: int
    meta: dict = field(default_factory=dict, compare=False)
    input_mode: int = 0
    n_max: int = 0
    threshold: int = 0
    c_in: int = 0
    pad: int = 0

    @property
    def n_channels(self) -> int:
        return sum(len(lp.channels) for lp in self.layers)

    def slots_used(self) -> int:
        """Weight-store slots, with each layer starting on a LANES boundary."""
        s = 0
        for lp in self.layers:
            s = -(-s // self.lanes) * self.lanes + lp.n_slots
        return s

    def n_beats(self) -> int:
        n = HEADER_BEATS
        for lp in self.layers:
            n += LAYER_BEATS + CHANNEL_BEATS * len(lp.channels) + BLOCK_BEATS * (-(-lp.n_entries // BLOCK_ENTRIES))
        return n

    def with_meta(self, **kw) -> Program:
        return replace(self, meta={**self.meta, **kw})


def _u(v: int, bits: int, what: str) -> int:
    v = int(v)
    if v < 0 or v >= (1 << bits):
        raise ValueError(f"{what}={v} does not fit in {bits} bits")
    return v


def encode_program(prog: Program) -> np.ndarray:
    """Program → uint64 beats (the DMA stream)."""
    beats: list[int] = []
    total = prog.n_beats()
    beats.append(C.PROGRAM_MAGIC | (C.FORMAT_VERSION << 32) | (_u(prog.lanes, 8, "lanes") << 48)
                 | (_u(len(prog.layers), 8, "n_layers") << 56))
    beats.append(_u(total, 32, "total beats") | (_u(prog.in_base, 16, "in_base") << 32)
                 | (_u(prog.input_mode, 8, "input_mode") << 48) | (_u(prog.n_max, 8, "n_max") << 56))
    beats.append(_u(prog.in_bytes, 32, "in_bytes") | (_u(prog.n_out, 16, "n_out") << 32)
                 | ((int(prog.threshold) & 0xFF) << 48) | (_u(prog.c_in, 4, "c_in") << 56) | (_u(prog.pad, 4, "pad") << 60))
    beats.append(_u(prog.slots_used(), 32, "slots") | (_u(prog.n_channels, 16, "channels") << 32)
                 | (_u(prog.act_log2, 16, "act_log2") << 48))
    for lp in prog.layers:
        d = lp.desc
        beats.append(_u(d.flags, 8, "flags") | (_u(d.p_log2, 4, "p_log2") << 8) | (_u(d.q_log2, 4, "q_log2") << 12)
                     | (_u(d.tb, 4, "tb") << 16) | (_u(d.in_list, 1, "in_list") << 20)
                     | (_u(d.out_list, 1, "out_list") << 21) | (_u(d.xs2, 1, "xs2") << 22)
                     | (_u(d.c_out, 16, "c_out") << 32) | (_u(d.in_c_step, 16, "in_c_step") << 48))
        beats.append(_u(d.h_it, 16, "h_it") | (_u(d.n_xt, 16, "n_xt") << 16) | (_u(d.w_valid, 16, "w_valid") << 32)
                     | (_u(d.in_ch_stride, 16, "in_ch_stride") << 48))
        beats.append(_u(d.in_base, 16, "in_base") | (_u(d.in_row_stride, 16, "in_row_stride") << 16)
                     | (_u(d.out_base, 16, "out_base") << 32) | (_u(d.out_row_stride, 16, "out_row_stride") << 48))
        beats.append(_u(d.out_ch_stride, 16, "out_ch_stride") | (_u(d.clear_base, 16, "clear_base") << 16)
                     | (_u(d.clear_len, 32, "clear_len") << 32))
        taps = list(d.tap_offset) + [0] * (N_TAPS - len(d.tap_offset))
        for b in range(4):
            beats.append(sum(_u(taps[4 * b + i], 16, "tap_offset") << (16 * i) for i in range(4)))
        for ch in lp.channels:
            beats.append((int(ch.bias) & 0xFFFFFFFF) | (_u(ch.mult, 16, "mult") << 32) | (_u(ch.shift, 6, "shift") << 48))
            beats.append(_u(ch.n_groups, 24, "n_groups"))
        n = lp.n_entries
        nb = -(-n // BLOCK_ENTRIES)
        codes = np.zeros(nb * BLOCK_ENTRIES, np.uint64)
        codes[:n] = lp.codes.astype(np.uint64)
        if n and codes.max() > GROUP_END:
            raise ValueError("code above 15")
        wts = np.zeros(nb * BLOCK_ENTRIES, np.uint64)
        wts[:n] = lp.weights.astype(np.int8).view(np.uint8).astype(np.uint64)
        sh4 = (np.arange(16, dtype=np.uint64) * np.uint64(4))
        sh8 = (np.arange(8, dtype=np.uint64) * np.uint64(8))
        cb = (codes.reshape(nb, 16) << sh4).sum(axis=1, dtype=np.uint64) if nb else np.zeros(0, np.uint64)
        wb = (wts.reshape(nb * 2, 8) << sh8).sum(axis=1, dtype=np.uint64).reshape(nb, 2) if nb else np.zeros((0, 2), np.uint64)
        blk = np.stack([cb, wb[:, 0], wb[:, 1]], axis=1).reshape(-1) if nb else np.zeros(0, np.uint64)
        beats.extend(int(x) for x in blk)
    out = np.array(beats, dtype=np.uint64)
    assert out.size == total
    return out


def _f(word: int, lo: int, bits: int) -> int:
    return (int(word) >> lo) & ((1 << bits) - 1)


def decode_program(beats: np.ndarray, hw: HwConfig, *, tlast_at: int | None = None) -> Program:
    """Parse and check a program exactly as the engine's loader does.

    ``tlast_at`` is the index of the beat carrying TLAST (default: the last beat).
    Raises :class:`ProgramError` with the engine's error code and the beat index.
    """
    beats = np.asarray(beats, dtype=np.uint64)
    n_in = int(beats.size) if tlast_at is None else int(tlast_at) + 1
    E = C.ERROR_CODES

    def need(i: int) -> int:
        if i >= n_in:
            raise ProgramError(E["TRUNCATED"], n_in - 1, f"TLAST at beat {n_in - 1}, program needs beat {i}")
        return int(beats[i])

    h0 = need(0)
    if _f(h0, 0, 32) != C.PROGRAM_MAGIC:
        raise ProgramError(E["BAD_MAGIC"], 0, f"magic 0x{_f(h0, 0, 32):08X}")
    if _f(h0, 32, 16) != C.FORMAT_VERSION:
        raise ProgramError(E["BAD_VERSION"], 0, f"version {_f(h0, 32, 16)}, overlay speaks {C.FORMAT_VERSION}")
    lanes = _f(h0, 48, 8)
    if lanes != hw.lanes:
        raise ProgramError(E["CONFIG_MISMATCH"], 0,
                           f"program built for LANES={lanes}, overlay has LANES={hw.lanes}: recompile with --lanes {hw.lanes}")
    n_layers = _f(h0, 56, 8)
    h1, h2, h3 = need(1), need(2), need(3)
    total = _f(h1, 0, 32)
    in_base = _f(h1, 32, 16)
    input_mode, n_max = _f(h1, 48, 8), _f(h1, 56, 8)
    in_bytes = _f(h2, 0, 32)
    n_out = _f(h2, 32, 16)
    threshold, c_in, pad = _f(h2, 48, 8), _f(h2, 56, 4), _f(h2, 60, 4)
    threshold = threshold - 256 if threshold & 0x80 else threshold
    slots, chans, act_log2 = _f(h3, 0, 32), _f(h3, 32, 16), _f(h3, 48, 16)
    if (n_layers < 1 or n_layers > hw.max_layers or slots > hw.w_slots or chans > hw.ch_cap
            or n_out > hw.out_cap or n_out < 1 or act_log2 > hw.act_log2):
        raise ProgramError(E["CAPACITY"], 3,
                           f"needs {n_layers} layers, {slots} slots, {chans} channels, {n_out} outputs, "
                           f"2^{act_log2} act bytes; overlay has {hw.max_layers}, {hw.w_slots}, {hw.ch_cap}, "
                           f"{hw.out_cap}, {hw.act_bytes}")
    if in_base >= hw.act_bytes or in_bytes < 1 or in_bytes > hw.act_bytes:
        raise ProgramError(E["BAD_LAYER"], 2, f"input region base {in_base} size {in_bytes}")
    if input_mode > MODE_SITES:
        raise ProgramError(E["BAD_LAYER"], 1, f"input mode {input_mode}")
    if input_mode != MODE_DENSE:
        if not 1 <= n_max <= hw.site_cap:
            raise ProgramError(E["CAPACITY"], 1, f"n_max={n_max}, overlay has SITE_CAP={hw.site_cap}")
        if (input_mode == MODE_REDUCE and c_in != 1) or not 1 <= c_in <= MAX_SITE_CHANNELS:
            raise ProgramError(E["BAD_LAYER"], 2, f"input mode {input_mode} with C_in={c_in}")

    i = HEADER_BEATS
    layers = []
    slot = 0
    ch_total = 0
    for li in range(n_layers):
        base_i = i
        d = [need(i + k) for k in range(LAYER_BEATS)]
        i += LAYER_BEATS
        taps = tuple(_f(d[4 + t // 4], 16 * (t % 4), 16) for t in range(N_TAPS))
        desc = LayerDesc(
            flags=_f(d[0], 0, 8), p_log2=_f(d[0], 8, 4), q_log2=_f(d[0], 12, 4), tb=_f(d[0], 16, 4),
            c_out=_f(d[0], 32, 16),
            h_it=_f(d[1], 0, 16), n_xt=_f(d[1], 16, 16), w_valid=_f(d[1], 32, 16), in_ch_stride=_f(d[1], 48, 16),
            in_base=_f(d[2], 0, 16), in_row_stride=_f(d[2], 16, 16), out_base=_f(d[2], 32, 16),
            out_row_stride=_f(d[2], 48, 16),
            out_ch_stride=_f(d[3], 0, 16), clear_base=_f(d[3], 16, 16), clear_len=_f(d[3], 32, 32),
            tap_offset=taps, in_list=_f(d[0], 20, 1), out_list=_f(d[0], 21, 1), xs2=_f(d[0], 22, 1),
            in_c_step=_f(d[0], 48, 16))
        if _f(d[0], 23, 9):
            raise ProgramError(E["BAD_LAYER"], base_i, f"layer {li}: reserved descriptor bits [31:23] set")
        _check_layer(desc, hw, li == n_layers - 1, n_out, base_i)
        prev_sites = layers[-1].desc.sites if layers else input_mode == MODE_SITES
        if (desc.flags & F_SCRUB) and not prev_sites:
            raise ProgramError(E["BAD_LAYER"], base_i, f"layer {li}: SCRUB after a layer without a site list")
        if li == 0 and input_mode != MODE_DENSE and not desc.sites:
            raise ProgramError(E["BAD_LAYER"], base_i, "a sparse-pixel input needs a SITES first layer")
        ch_total += desc.c_out
        if ch_total > hw.ch_cap:
            raise ProgramError(E["CAPACITY"], base_i, f"channel records exceed CH_CAP={hw.ch_cap}")
        chans_l = []
        for c in range(desc.c_out):
            b0, b1 = need(i), need(i + 1)
            bias = _f(b0, 0, 32)
            bias = bias - (1 << 32) if bias & (1 << 31) else bias
            rec = ChannelRec(bias=bias, mult=_f(b0, 32, 16), shift=_f(b0, 48, 6), n_groups=_f(b1, 0, 24))
            if rec.n_groups == 0 or (not desc.out and not (1 <= rec.shift <= 47)):
                raise ProgramError(E["BAD_LAYER"], i, f"layer {li} channel {c}: n_groups={rec.n_groups} shift={rec.shift}")
            chans_l.append(rec)
            i += CHANNEL_BEATS
        n_slots = sum(ch.n_groups for ch in chans_l) * desc.Q
        slot = -(-slot // hw.lanes) * hw.lanes
        if slot + n_slots > hw.w_slots:
            raise ProgramError(E["CAPACITY"], i, f"layer {li} needs slots up to {slot + n_slots}, W_SLOTS={hw.w_slots}")
        slot += n_slots
        n_stream = _stream_entries_needed(beats, i, n_in, [ch.n_groups * desc.Q for ch in chans_l], desc.Q, li)
        nb = -(-n_stream // BLOCK_ENTRIES)
        blk = beats[i:i + nb * BLOCK_BEATS].reshape(nb, BLOCK_BEATS) if nb else np.zeros((0, 3), np.uint64)
        codes, wb = _block_fields(blk)
        layers.append(LayerProgram(desc=desc, channels=tuple(chans_l), codes=codes[:n_stream].copy(),
                                   weights=wb[:n_stream].copy()))
        i += nb * BLOCK_BEATS
    if i != total:
        raise ProgramError(E["BAD_LAYER"], 1, f"header declares {total} beats, sections add up to {i}")
    if n_in > total:
        raise ProgramError(E["TOO_LONG"], total - 1, f"no TLAST on the declared last beat {total - 1}")
    return Program(lanes=lanes, in_base=in_base, in_bytes=in_bytes, n_out=n_out, layers=tuple(layers),
                   act_log2=act_log2, input_mode=input_mode, n_max=n_max, threshold=threshold, c_in=c_in, pad=pad)


def _block_fields(blk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes uint8, weights int8) of weight blocks (nb, 3) beats."""
    sh4 = np.arange(16, dtype=np.uint64) * np.uint64(4)
    codes = ((blk[:, 0:1] >> sh4) & np.uint64(15)).astype(np.uint8).reshape(-1)
    wb = np.ascontiguousarray(blk[:, 1:3]).reshape(-1).astype("<u8").view(np.int8)
    return codes, wb


def _stream_entries_needed(beats: np.ndarray, i: int, n_in: int, row_slots: list, Q: int, li: int) -> int:
    """Walk a layer's weight blocks the way the loader does; returns the stream entries
    consumed, raising TRUNCATED when the packet ends first."""
    E = C.ERROR_CODES
    used = 0
    codes = np.zeros(0, np.uint8)
    for slots in row_slots:
        filled = 0
        while filled < slots:
            if used >= codes.size:
                b = i + (codes.size // BLOCK_ENTRIES) * BLOCK_BEATS
                if b + BLOCK_BEATS > n_in:
                    raise ProgramError(E["TRUNCATED"], n_in - 1, f"layer {li} weight blocks cut short")
                codes = np.concatenate([codes, _block_fields(beats[b:b + BLOCK_BEATS].reshape(1, 3))[0]])
            c = int(codes[used])
            used += 1
            filled += (Q - filled % Q) if c == GROUP_END else 1
    return used


def _check_layer(d: LayerDesc, hw: HwConfig, last: bool, n_out: int, beat: int) -> None:
    bad = []
    if d.p_log2 + d.q_log2 != hw.lanes_log2:
        bad.append(f"log2 P + log2 Q = {d.p_log2 + d.q_log2} != log2 LANES")
    if d.c_out == 0 or d.h_it == 0 or d.n_xt == 0:
        bad.append("zero C_out/h_it/n_xt")
    if d.tb > 4:
        bad.append(f"tb={d.tb} > 4 (at most 16 taps per input channel)")
    if d.pool and (d.P < 2 or d.h_it % 2):
        bad.append("POOL needs P >= 2 and even h_it")
    if d.out != last:
        bad.append("OUT flag must be on the last layer only")
    if d.out and (d.P != 1 or d.h_it != 1 or d.n_xt != 1 or d.c_out != n_out):
        bad.append("OUT layer must be one 1-pixel tile with C_out = n_out")
    if d.flags & ~ALL_FLAGS:
        bad.append(f"unknown flags 0x{d.flags:02X}")
    if d.sites and (d.P != 1 or d.pool or d.out):
        bad.append("SITES needs P = 1, no grid pooling and a non-OUT layer")
    if (d.flags & (F_MAXRED | F_AVG | F_POOLSITES)) and not d.sites:
        bad.append("MAXRED/AVG/POOLSITES need SITES")
    if (d.flags & F_MAXRED) and (d.flags & F_AVG):
        bad.append("MAXRED and AVG together")
    if (d.flags & F_POOLSITES) and (d.h_it > POOLSITES_MAX or d.w_valid > POOLSITES_MAX):
        bad.append(f"POOLSITES grid {d.h_it}x{d.w_valid} > {POOLSITES_MAX}x{POOLSITES_MAX}")
    if (d.in_list or d.out_list) and not d.sites:
        bad.append("site lists on a non-SITES layer")
    if d.sites and (d.xs2 or d.in_c_step):
        bad.append("XS2 and in_c_step are grid-layer fields, not for SITES layers")
    if hw.site_cap == 0 and (d.flags & ~(F_RELU | F_POOL | F_OUT) or d.in_list or d.out_list):
        bad.append("sparse-pixel flags on an overlay without sparse-pixel support (SITE_CAP = 0)")
    for nm in ("in_base", "out_base", "clear_base", "in_row_stride", "out_row_stride", "in_ch_stride",
               "out_ch_stride", "in_c_step"):
        if getattr(d, nm) >= hw.act_bytes:
            bad.append(f"{nm}={getattr(d, nm)} >= ACT_BYTES")
    if d.clear_len > hw.act_bytes:
        bad.append(f"clear_len={d.clear_len} > ACT_BYTES")
    if bad:
        raise ProgramError(C.ERROR_CODES["BAD_LAYER"], beat, "; ".join(bad))


def decode_entries(lp: LayerProgram) -> tuple[np.ndarray, np.ndarray]:
    """Stream entries → per-slot (offset uint16, weight int8), as the loader writes them."""
    d = lp.desc
    Q = d.Q
    taps = np.asarray(d.tap_offset, np.int64)
    tmask = (1 << d.tb) - 1
    ks = np.zeros(lp.n_slots, np.int64)
    ws = np.zeros(lp.n_slots, np.int8)
    codes = lp.codes.tolist()
    wts = lp.weights.tolist()
    e = 0
    s = 0
    for ch in lp.channels:
        end = s + ch.n_groups * Q
        k = 0
        while s < end:
            c = codes[e]
            if c == GROUP_END:
                n = Q - (s % Q)
                ks[s:s + n] = k
                s += n
            else:
                k += c
                ks[s] = k
                ws[s] = wts[e]
                s += 1
            e += 1
    off = ((ks >> d.tb) * d.in_ch_stride + taps[ks & tmask]) & 0xFFFF
    return off.astype(np.uint16), ws


def store_image(prog: Program, hw: HwConfig) -> np.ndarray:
    """Weight-store contents after loading ``prog``: uint32 entries {offset, weight} per slot
    (24 significant bits), length ``W_SLOTS``; unused slots are 0."""
    img = np.zeros(hw.w_slots, np.uint32)
    slot = 0
    for lp in prog.layers:
        slot = -(-slot // hw.lanes) * hw.lanes
        off, w = decode_entries(lp)
        img[slot:slot + lp.n_slots] = (off.astype(np.uint32) << 8) | w.view(np.uint8).astype(np.uint32)
        slot += lp.n_slots
    return img


def store_hex(prog: Program, hw: HwConfig) -> str:
    """``$readmemh`` text of the weight store: one LANES×24-bit word per line, slot 0 in the LSBs."""
    img = store_image(prog, hw)[: -(-prog.slots_used() // hw.lanes) * hw.lanes].reshape(-1, hw.lanes)
    digits = 6 * hw.lanes
    lines = []
    for row in img:
        v = 0
        for s in range(hw.lanes - 1, -1, -1):
            v = (v << 24) | int(row[s])
        lines.append(f"{v:0{digits}x}")
    return "\n".join(lines) + "\n"
