"""Compiler: QModel → engine program (docs/hardware.md).

Pure functions over numpy arrays and frozen dataclasses; no torch. Decisions made here,
not in hardware:

* activation layout: each layer's input is a zero-padded (C, H+2p, W+2p) region (dense
  (C, H, W) before an FC layer, matching ``torch.flatten``); regions are placed disjoint
  when they fit, so padding borders cleared at load stay zero, else they ping-pong between
  two areas and padded outputs are cleared per layer;
* the tile shape per layer: P output pixels × Q entries (P·Q = LANES), picked by
  predicted cycles (pixel-parallel for convolutions, entry-parallel for FC layers);
* entry order and grouping: each row's non-zero weights in index order, run-length coded
  (4-bit run codes), zero-weight fillers for long gaps, and groups of Q entries whose
  non-zero lanes never collide in an activation bank.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from zeroskip.driver.bundle import pack_inputs  # noqa: F401  (re-exported: one packer for host and board)
from zeroskip.driver.errors import CompileError  # noqa: E402,F401  (raised here; one error root)
from zeroskip.driver.program import (
    BLOCK_BEATS,
    BLOCK_ENTRIES,
    F_AVG,
    F_MAXRED,
    F_OUT,
    F_POOL,
    F_POOLSITES,
    F_RELU,
    F_SCRUB,
    F_SITES,
    GROUP_END,
    MAX_RUN,
    MODE_REDUCE,
    MODE_SITES,
    N_TAPS,
    POOLSITES_MAX,
    ChannelRec,
    HwConfig,
    LayerDesc,
    LayerProgram,
    Program,
)

from zeroskip.host.quant.qmodel import QLayer, QModel


@dataclass(frozen=True)
class InputLayout:
    """How the driver packs one image for the engine: pad (C, H, W) by ``pad`` on each
    spatial side and flatten; ``in_bytes`` is the packed size."""

    shape: tuple
    pad: int
    in_bytes: int

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "pad": self.pad, "in_bytes": self.in_bytes}


@dataclass(frozen=True)
class _Region:
    base: int
    shape: tuple  # (C, H, W) of the tensor, or (N,) flat
    pad: int

    @property
    def row_stride(self) -> int:
        return self.shape[2] + 2 * self.pad if len(self.shape) == 3 else 1

    @property
    def ch_stride(self) -> int:
        if len(self.shape) == 3:
            return (self.shape[1] + 2 * self.pad) * self.row_stride
        return 1

    @property
    def size(self) -> int:
        return self.shape[0] * self.ch_stride if len(self.shape) == 3 else int(self.shape[0])

    @property
    def interior(self) -> int:
        return self.base + self.pad * self.row_stride + self.pad if len(self.shape) == 3 else self.base


def _consumer_pad(layers: tuple, i: int) -> int:
    """Padding the input of layer i needs."""
    return layers[i].padding if layers[i].kind == "conv" else 0


def plan_regions(model: QModel, hw: HwConfig) -> tuple[list[_Region], list[bool]]:
    """Input region of every layer, and whether layer i must clear its output region."""
    shapes = model.shapes()
    L = len(model.layers)
    regs = []
    for i in range(L):
        shp = shapes[i]
        pad = _consumer_pad(model.layers, i)
        if model.layers[i].kind == "fc":
            shp = (int(np.prod(shp)),)
        regs.append(_Region(0, tuple(int(s) for s in shp), pad))
    total = sum(r.size for r in regs)
    clears = [False] * L
    if total <= hw.act_bytes:
        base = 0
        out = []
        for r in regs:
            out.append(_Region(base, r.shape, r.pad))
            base += r.size
        return out, clears
    # ping-pong between area A (even regions) and area B (odd regions)
    size_a = max(r.size for r in regs[0::2])
    size_b = max((r.size for r in regs[1::2]), default=0)
    if size_a + size_b > hw.act_bytes:
        raise CompileError(
            f"activations need {size_a + size_b} bytes even when ping-ponged, overlay has ACT_BYTES="
            f"{hw.act_bytes}: shrink the feature maps or build the overlay with a larger ACT_BYTES")
    out = [_Region(0 if i % 2 == 0 else size_a, r.shape, r.pad) for i, r in enumerate(regs)]
    for i in range(L - 1):
        clears[i] = out[i + 1].pad > 0
    return out, clears


def _row_entries(w_row: np.ndarray, layer: QLayer, tb: int, dense: bool) -> tuple[np.ndarray, np.ndarray]:
    """(k, weight) of one output channel's entries in index order."""
    if layer.kind != "fc":
        c_in, kh, kw = w_row.shape
        taps = kh * kw
        flat = w_row.reshape(c_in, taps)
        ks = (np.arange(c_in)[:, None] << tb) + np.arange(taps)[None, :]
    else:
        flat = w_row.reshape(1, -1)
        ks = np.arange(flat.size)[None, :]
    ks = ks.reshape(-1)
    ws = flat.reshape(-1)
    if not dense:
        nz = ws != 0
        ks, ws = ks[nz], ws[nz]
    return ks.astype(np.int64), ws.astype(np.int8)


def _runs_with_fillers(ks: np.ndarray, ws: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Insert zero-weight fillers so no run exceeds MAX_RUN; returns (k, w, code)."""
    k_out, w_out, c_out = [], [], []
    prev = 0
    for k, w in zip(ks.tolist(), ws.tolist()):
        gap = k - prev
        while gap > MAX_RUN:
            prev += MAX_RUN
            k_out.append(prev)
            w_out.append(0)
            c_out.append(MAX_RUN)
            gap -= MAX_RUN
        k_out.append(k)
        w_out.append(w)
        c_out.append(gap)
        prev = k
    return (np.array(k_out, np.int64), np.array(w_out, np.int8), np.array(c_out, np.uint8))


def _group(ks, ws, codes, offsets_of, P: int, Q: int, lanes: int):
    """Pack a row's entries into groups of Q slots whose non-zero lanes never collide in a
    bank, ending a group early (and the row's last group) with a GROUP_END code.
    Returns (stream codes, stream weights, n_groups ≥ 1)."""
    if ks.size == 0:  # an all-zero row still produces its bias: one group of zero weights
        if Q == 1:
            return np.zeros(1, np.uint8), np.zeros(1, np.int8), 1
        return np.array([GROUP_END], np.uint8), np.zeros(1, np.int8), 1
    if Q == 1:
        return codes, ws, int(ks.size)
    out_c: list[int] = []
    out_w: list[int] = []
    used: dict[int, int] = {}  # bank → relative address of the open group's non-zero lanes
    fill = 0
    groups = 0
    lane_p = np.arange(P)
    for k, w, c in zip(ks.tolist(), ws.tolist(), codes.tolist()):
        rel = (offsets_of(k) + lane_p).tolist() if w != 0 else []
        if fill and any(used.get(a % lanes, a) != a for a in rel):
            out_c.append(GROUP_END)  # close the group: the rest are zero-weight slots
            out_w.append(0)
            fill, used = 0, {}
            groups += 1
        out_c.append(c)
        out_w.append(w)
        for a in rel:
            used[a % lanes] = a
        fill += 1
        if fill == Q:
            fill, used = 0, {}
            groups += 1
    if fill:
        out_c.append(GROUP_END)
        out_w.append(0)
        groups += 1
    return np.array(out_c, np.uint8), np.array(out_w, np.int8), groups


def _tb_for(layer: QLayer) -> int:
    taps = layer.kernel[0] * layer.kernel[1]
    if taps > N_TAPS:
        raise CompileError(f"{layer.name or layer.kind}: kernel {layer.kernel} has {taps} taps; the engine "
                           f"supports at most {N_TAPS} per input channel (e.g. 3x3 or 4x4)")
    return (taps - 1).bit_length() if taps > 1 else 0


def _compile_layer(layer: QLayer, index: int, last: bool, reg_in: _Region, reg_out: _Region | None,
                   clear: bool, hw: HwConfig, dense: bool, in_shape, out_shape) -> LayerProgram:
    lanes = hw.lanes
    tb = _tb_for(layer)
    if layer.kind == "conv":
        _, h, w = in_shape
        kh, kw = layer.kernel
        ho, wo = h + 2 * layer.padding - kh + 1, w + 2 * layer.padding - kw + 1
        taps = [ky * reg_in.row_stride + kx for ky in range(kh) for kx in range(kw)]
        in_cs = reg_in.ch_stride
    else:
        ho = wo = 1
        taps = [0]
        in_cs = 1
    if layer.pool:
        h_it, w_need = 2 * (ho // 2), 2 * (wo // 2)
    else:
        h_it, w_need = ho, wo
    tap_offset = tuple(taps + [0] * (N_TAPS - len(taps)))

    def offsets_of(k: int) -> int:
        return ((k >> tb) * in_cs + tap_offset[k & ((1 << tb) - 1)]) & 0xFFFF

    rows = [_runs_with_fillers(*_row_entries(layer.weight[c], layer, tb, dense)) for c in range(layer.c_out)]
    if layer.kind == "fc":
        p_options = [1]
    else:
        p_options = [1 << e for e in range(hw.lanes_log2 + 1) if (1 << e) >= (2 if layer.pool else 1)]
    best = None
    for P in p_options:
        Q = lanes // P
        n_xt = -(-w_need // P)
        grouped = [_group(k, wv, cd, offsets_of, P, Q, lanes) for (k, wv, cd) in rows]
        cycles = sum(g[2] for g in grouped) * h_it * n_xt
        if best is None or cycles < best[0] or (cycles == best[0] and P > best[1]):
            best = (cycles, P, Q, n_xt, grouped)
    _, P, Q, n_xt, grouped = best
    flags = (F_RELU if layer.relu else 0) | (F_POOL if layer.pool else 0) | (F_OUT if last else 0)
    if last:
        out_base = out_rs = 0
        out_cs = 1
        clear_base = clear_len = 0
    else:
        out_base, out_rs, out_cs = reg_out.interior, reg_out.row_stride, reg_out.ch_stride
        if len(reg_out.shape) == 1:  # flat (FC input): (C, H, W) order
            if len(out_shape) == 3:
                out_rs, out_cs = out_shape[2], out_shape[1] * out_shape[2]
            else:
                out_rs, out_cs = 1, 1
        clear_base, clear_len = (reg_out.base, reg_out.size) if clear else (0, 0)
    desc = LayerDesc(
        flags=flags, p_log2=P.bit_length() - 1, q_log2=Q.bit_length() - 1, tb=tb, c_out=layer.c_out,
        h_it=h_it, n_xt=n_xt, w_valid=w_need, in_ch_stride=in_cs & 0xFFFF,
        in_base=reg_in.base, in_row_stride=reg_in.row_stride if layer.kind == "conv" else 0,
        out_base=out_base, out_row_stride=out_rs, out_ch_stride=out_cs,
        clear_base=clear_base, clear_len=clear_len, tap_offset=tap_offset)
    chans = tuple(ChannelRec(bias=int(layer.bias[c]), mult=int(layer.mult[c]) if not last else 1,
                             shift=int(layer.shift[c]) if not last else 1, n_groups=int(grouped[c][2]))
                  for c in range(layer.c_out))
    codes = np.concatenate([g[0] for g in grouped]).astype(np.uint8)
    weights = np.concatenate([g[1] for g in grouped]).astype(np.int8)
    return LayerProgram(desc=desc, channels=chans, codes=codes, weights=weights)


def _check_acc_bound(model: QModel) -> None:
    for i, layer in enumerate(model.layers):
        if layer.kind == "spool":
            continue
        wabs = np.abs(layer.weight.astype(np.int64)).reshape(layer.c_out, -1).sum(axis=1)
        bound = wabs * 128 + np.abs(layer.bias.astype(np.int64))
        if np.any(bound >= 2 ** 31):
            raise CompileError(f"layer {i}: the int32 accumulator could overflow (bound {int(bound.max())}); "
                               "re-quantise with smaller weights or bias")


def input_layout(model: QModel) -> InputLayout:
    shape = tuple(int(s) for s in model.input_shape)
    first = model.layers[0]
    pad = first.padding if first.kind in ("conv", "sconv") else 0
    c, h, w = shape
    return InputLayout(shape=shape, pad=pad, in_bytes=c * (h + 2 * pad) * (w + 2 * pad))


def compile_model(model: QModel, hw: HwConfig, *, dense: bool = False, input_mode: str = "sites") -> Program:
    """Compile ``model`` for ``hw``. ``dense=True`` keeps zero weights as entries (the
    baseline that spends a lane slot on every weight). ``input_mode`` applies to
    sparse-pixel models: ``"sites"`` (the driver sends pre-reduced sites) or ``"reduce"``
    (the engine reduces the dense image)."""
    _check_acc_bound(model)
    if model.reduce is not None:
        return _compile_sparse(model, hw, dense=dense, input_mode=input_mode)
    L = len(model.layers)
    if L > hw.max_layers:
        raise CompileError(f"{L} layers, overlay has MAX_LAYERS={hw.max_layers}")
    if model.layers[-1].c_out > hw.out_cap:
        raise CompileError(f"{model.layers[-1].c_out} outputs, overlay has OUT_CAP={hw.out_cap}")
    regs, clears = plan_regions(model, hw)
    shapes = model.shapes()
    layers = []
    for i, layer in enumerate(model.layers):
        last = i == L - 1
        layers.append(_compile_layer(layer, i, last, regs[i], None if last else regs[i + 1], clears[i], hw, dense,
                                     shapes[i], shapes[i + 1]))
    top = max(r.base + r.size for r in regs)
    act_log2 = max(0, (top - 1).bit_length())
    lay = input_layout(model)
    prog = Program(lanes=hw.lanes, in_base=regs[0].base, in_bytes=lay.in_bytes, n_out=model.layers[-1].c_out,
                   layers=tuple(layers), act_log2=act_log2,
                   meta={"input_layout": lay.to_dict(), "dense": dense, "model": model.name})
    if prog.slots_used() > hw.w_slots:
        raise CompileError(f"the program needs {prog.slots_used()} weight slots, overlay has W_SLOTS={hw.w_slots}: "
                           "prune harder or build a larger overlay")
    if prog.n_channels > hw.ch_cap:
        raise CompileError(f"{prog.n_channels} output channels in all, overlay has CH_CAP={hw.ch_cap}")
    return prog


def weight_bytes(model: QModel, prog: Program) -> tuple[int, int]:
    """(dense int8 weight bytes, compressed bytes): compressed = the program's weight
    blocks (4-bit run code + int8 weight per entry, fillers and padding included, whole
    16-entry blocks) plus a 4-byte row length per output channel."""
    dense = sum(int(layer.weight.size) for layer in model.layers if getattr(layer, "weight", None) is not None)
    comp = 0
    for lp in prog.layers:
        if lp.desc.flags & (F_MAXRED | F_AVG):  # sparse pooling: fixed window entries, not model weights
            continue
        comp += BLOCK_BEATS * 8 * (-(-lp.n_entries // BLOCK_ENTRIES)) + 4 * len(lp.channels)
    return dense, comp


# -- sparse-pixel models ---------------------------------------------------------------------

def _pool_row_stride(width: int, lanes: int) -> int:
    """Smallest row stride ≥ width whose 2×2 window {0, 1, rs, rs+1} hits four banks."""
    rs = width
    while lanes >= 4 and (rs % lanes) in (0, 1, lanes - 1):
        rs += 1
    return rs


def _sparse_entries(rows_k, rows_w, offsets_of, lanes: int, dense: bool):
    grouped = []
    for ks, ws in zip(rows_k, rows_w):
        if not dense:
            nz = ws != 0
            ks, ws = ks[nz], ws[nz]
        grouped.append(_group(*_runs_with_fillers(ks, ws), offsets_of, 1, lanes, lanes))
    return grouped


def _compile_sparse(model: QModel, hw: HwConfig, *, dense: bool, input_mode: str) -> Program:
    """Sparse-pixel models (docs/sparse_pixels.md): SITES layers over the active-site
    lists, every map a zero-filled grid kept zero by SCRUB after its consumer."""
    if input_mode not in ("sites", "reduce"):
        raise CompileError(f"input_mode must be 'sites' or 'reduce', got {input_mode!r}")
    red = model.reduce
    if red.n_max > hw.site_cap:
        raise CompileError(f"n_max={red.n_max} sites, overlay has SITE_CAP={hw.site_cap}")
    lanes = hw.lanes
    shapes = model.shapes()
    layers_m = model.layers
    L = len(layers_m)
    n_sparse = next(i for i, layer in enumerate(layers_m) if layer.kind == "fc")
    if input_mode == "reduce" and shapes[0][0] != 1:
        raise CompileError("hardware input reduce needs a single-channel input; use input_mode='sites'")
    if input_mode == "sites" and shapes[0][0] > 6:
        raise CompileError("pre-reduced site packets carry at most 6 channels")
    for i, layer in enumerate(layers_m):
        if layer.kind == "spool" and (shapes[i][1] // 2 > POOLSITES_MAX or shapes[i][2] // 2 > POOLSITES_MAX):
            raise CompileError(f"sparse pooling layer {i} ({layer.name or 'spool'}): pooled grid "
                               f"{shapes[i][1] // 2}x{shapes[i][2] // 2}, the overlay pools sites on grids of at most "
                               f"{POOLSITES_MAX}x{POOLSITES_MAX} (input maps up to "
                               f"{2 * POOLSITES_MAX + 1}x{2 * POOLSITES_MAX + 1})")
    # regions: input of every layer, disjoint
    regs = []
    base = 0
    for i in range(L):
        shp = shapes[i]
        layer = layers_m[i]
        if layer.kind == "fc":
            shp = (int(np.prod(shp)),)
            r = _Region(base, shp, 0)
            rs, cs = (shapes[i][2], shapes[i][1] * shapes[i][2]) if len(shapes[i]) == 3 else (1, 1)
        elif layer.kind == "sconv":
            r = _Region(base, shp, layer.padding)
            rs, cs = r.row_stride, r.ch_stride
        else:  # spool input: unpadded grid with a conflict-free row stride
            c, h, w = shp
            rs = _pool_row_stride(w, lanes)
            cs = h * rs
            r = _Region(base, (c, h, rs), 0)
        regs.append((r, rs, cs))
        base += r.size
    if base > hw.act_bytes:
        raise CompileError(f"sparse-pixel maps need {base} bytes of activation memory, overlay has "
                           f"ACT_BYTES={hw.act_bytes}: use smaller maps or fewer channels")
    out_layers = []
    cur = 0
    for i, layer in enumerate(layers_m):
        last = i == L - 1
        r_in, rs, cs = regs[i]
        if last:
            ob, ors, ocs = 0, 0, 1
        else:
            r_out, ors, ocs = regs[i + 1]
            ob = r_out.interior
        scrub = F_SCRUB if (i > 0 and i <= n_sparse) or (i == 0 and input_mode == "sites") else 0
        if layer.kind == "fc":
            lp = _compile_layer(layer, i, last, r_in, None if last else r_out, False, hw, dense, shapes[i],
                                shapes[i + 1])
            d = lp.desc
            if not last and len(shapes[i + 1]) == 1:
                d = replace(d, out_row_stride=1, out_ch_stride=1)
            out_layers.append(replace(lp, desc=replace(d, flags=d.flags | scrub)))
            continue
        c_in, h, w = shapes[i]
        if layer.kind == "sconv":
            tb = _tb_for(layer)
            kh, kw = layer.kernel
            taps = [ky * rs + kx for ky in range(kh) for kx in range(kw)]
            tap_offset = tuple(taps + [0] * (N_TAPS - len(taps)))

            def offsets_of(k, tb=tb, tap_offset=tap_offset, cs=cs):
                return ((k >> tb) * cs + tap_offset[k & ((1 << tb) - 1)]) & 0xFFFF

            rows = [_row_entries(layer.weight[c], layer, tb, True) for c in range(layer.c_out)]
            grouped = _sparse_entries([r[0] for r in rows], [r[1] for r in rows], offsets_of, lanes, dense)
            flags = F_SITES | scrub | (F_RELU if layer.relu else 0)
            desc = LayerDesc(flags=flags, p_log2=0, q_log2=hw.lanes_log2, tb=tb, c_out=layer.c_out, h_it=h, n_xt=1,
                             w_valid=w, in_ch_stride=cs, in_base=r_in.base, in_row_stride=rs, out_base=ob,
                             out_row_stride=ors, out_ch_stride=ocs, tap_offset=tap_offset, in_list=cur,
                             out_list=cur)
            chans = tuple(ChannelRec(bias=int(layer.bias[c]), mult=int(layer.mult[c]), shift=int(layer.shift[c]),
                                     n_groups=int(grouped[c][2])) for c in range(layer.c_out))
        else:  # spool
            tap_offset = (0, 1, rs, rs + 1) + (0,) * (N_TAPS - 4)

            def offsets_of(k, tap_offset=tap_offset, cs=cs):
                return ((k >> 2) * cs + tap_offset[k & 3]) & 0xFFFF

            ks = [np.arange(4, dtype=np.int64) + 4 * c for c in range(c_in)]
            ws = [np.ones(4, np.int8) for _ in range(c_in)]
            grouped = _sparse_entries(ks, ws, offsets_of, lanes, dense)
            flags = F_SITES | F_POOLSITES | scrub | (F_MAXRED if layer.mode == "max" else F_AVG)
            desc = LayerDesc(flags=flags, p_log2=0, q_log2=hw.lanes_log2, tb=2, c_out=c_in, h_it=h // 2, n_xt=1,
                             w_valid=w // 2, in_ch_stride=cs, in_base=r_in.interior, in_row_stride=rs, out_base=ob,
                             out_row_stride=ors, out_ch_stride=ocs, tap_offset=tap_offset, in_list=cur,
                             out_list=1 - cur)
            cur = 1 - cur
            chans = tuple(ChannelRec(bias=0, mult=1, shift=1, n_groups=int(g[2])) for g in grouped)
        out_layers.append(LayerProgram(desc=desc, channels=chans,
                                       codes=np.concatenate([g[0] for g in grouped]).astype(np.uint8),
                                       weights=np.concatenate([g[1] for g in grouped]).astype(np.int8)))
    lay = input_layout(model)
    mode = MODE_SITES if input_mode == "sites" else MODE_REDUCE
    layout = {**lay.to_dict(), "mode": input_mode, "threshold": red.threshold, "n_max": red.n_max}
    prog = Program(lanes=lanes, in_base=regs[0][0].base, in_bytes=lay.in_bytes, n_out=layers_m[-1].c_out,
                   layers=tuple(out_layers), act_log2=max(0, (base - 1).bit_length()),
                   meta={"input_layout": layout, "dense": dense, "model": model.name},
                   input_mode=mode, n_max=red.n_max, threshold=red.threshold, c_in=shapes[0][0], pad=lay.pad)
    if prog.slots_used() > hw.w_slots:
        raise CompileError(f"the program needs {prog.slots_used()} weight slots, overlay has W_SLOTS={hw.w_slots}")
    if prog.n_channels > hw.ch_cap:
        raise CompileError(f"{prog.n_channels} output channels in all, overlay has CH_CAP={hw.ch_cap}")
    return prog
