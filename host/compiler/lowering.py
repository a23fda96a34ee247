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

from zeroskip.host.quant.qmodel import LayerKind, QLayer, QModel


@dataclass(frozen=True)
class InputLayout:
    """How the driver packs one image for the engine: pad (C, H, W) by ``pads`` (top,
    bottom, left, right) and flatten; ``in_bytes`` is the packed size."""

    shape: tuple
    pads: tuple
    in_bytes: int
    order: str = "chw"

    @property
    def pad(self) -> int:
        """The padding when it is the same on every side (else the largest)."""
        return max(self.pads)

    def to_dict(self) -> dict:
        d = {"shape": list(self.shape), "pad": self.pad, "in_bytes": self.in_bytes}
        if len(set(self.pads)) > 1:
            d["pads"] = list(self.pads)
        if self.order != "chw":
            d["order"] = self.order
        return d


def _pads4(pad) -> tuple:
    return (int(pad),) * 4 if np.isscalar(pad) else tuple(int(p) for p in pad)


@dataclass(frozen=True)
class _Region:
    """A tensor in activation memory: ``order`` ``chw`` (channel planes of padded rows) or
    ``hcw`` (padded rows of all channels one after the other: what a convolution with more
    than 16 taps per input channel reads, one virtual input channel per kernel row)."""

    base: int
    shape: tuple  # (C, H, W) of the tensor, or (N,) flat
    pad: object   # padding: an int (every side) or (top, bottom, left, right)
    order: str = "chw"

    @property
    def pads(self) -> tuple:
        return _pads4(self.pad)

    @property
    def padded_w(self) -> int:
        _, _, left, right = self.pads
        return self.shape[2] + left + right

    @property
    def row_stride(self) -> int:
        if len(self.shape) != 3:
            return 1
        return self.shape[0] * self.padded_w if self.order == "hcw" else self.padded_w

    @property
    def ch_stride(self) -> int:
        if len(self.shape) == 3:
            if self.order == "hcw":
                return self.padded_w
            t, b, _, _ = self.pads
            return (self.shape[1] + t + b) * self.row_stride
        return 1

    @property
    def size(self) -> int:
        if len(self.shape) != 3:
            return int(self.shape[0])
        t, b, _, _ = self.pads
        return self.shape[0] * (self.shape[1] + t + b) * self.padded_w

    @property
    def interior(self) -> int:
        t, _, left, _ = self.pads
        return self.base + t * self.row_stride + left if len(self.shape) == 3 else self.base


def _tensor_pads(model: QModel) -> dict:
    """Padding of every tensor (-1: the input, i: layer i's output): the largest any conv
    reader needs per side; a residual add's tensor takes the padding of the conv input it
    is read beside (the two must share strides). Raises when a tensor is read both as a
    padded map and as a flat vector."""
    L = len(model.layers)
    pads = {t: [0, 0, 0, 0] for t in range(-1, L - 1)}
    flat_readers: dict[int, str] = {}
    for i, layer in enumerate(model.layers):
        j = model.source(i)
        if layer.kind is LayerKind.FC:
            flat_readers[j] = layer.name or f"layer {i}"
        else:
            pads[j] = [max(a, b) for a, b in zip(pads[j], layer.pads)]
    _unify_residual_pairs(model, pads, lambda a, b: [max(x, y) for x, y in zip(a, b)])
    for t, who in flat_readers.items():
        if any(pads[t]):
            raise CompileError(f"the output of {'the input' if t < 0 else _lname(model, t)} is read flat by {who} "
                               "and padded by a convolution: insert a layer between them")
    return {t: tuple(p) for t, p in pads.items()}


def _unify_residual_pairs(model: QModel, prop: dict, join) -> None:
    """A residual add reads its skip tensor beside the conv's input with the same strides:
    give both tensors of every such pair ``join`` of their property, until nothing changes."""
    pairs = [(model.source(i), layer.skip) for i, layer in enumerate(model.layers)
             if getattr(layer, "skip", None) is not None]
    changed = True
    while changed:
        changed = False
        for a, b in pairs:
            m = join(prop[a], prop[b])
            if m != prop[a] or m != prop[b]:
                prop[a], prop[b] = m, m
                changed = True


def _needs_rows(layer: QLayer) -> bool:
    """A conv whose taps per input channel (a residual add's included) exceed the tap
    table and that reads several input channels: it reads an ``hcw`` tensor."""
    if layer.kind is not LayerKind.CONV or layer.depthwise or layer.c_in == 1:
        return False
    kh, kw = layer.kernel
    return kh * kw + (1 if getattr(layer, "skip", None) is not None else 0) > N_TAPS


def _tensor_orders(model: QModel) -> dict:
    """``hcw`` for the tensors read by a convolution with more than 16 taps per input
    channel (and the residual tensors read beside them), ``chw`` for the rest."""
    L = len(model.layers)
    orders = {t: "chw" for t in range(-1, L - 1)}
    for i, layer in enumerate(model.layers):
        if _needs_rows(layer):
            orders[model.source(i)] = "hcw"
    _unify_residual_pairs(model, orders, lambda a, b: "hcw" if "hcw" in (a, b) else a)
    for i, layer in enumerate(model.layers):
        j = model.source(i)
        if layer.kind is LayerKind.FC and orders[j] == "hcw":
            raise CompileError(f"{_lname(model, i)} reads flat the output of "
                               f"{'the input' if j < 0 else _lname(model, j)}, which a convolution with more than "
                               f"{N_TAPS} taps per input channel also reads: insert a layer between them")
    return orders


def _lname(model: QModel, i: int) -> str:
    layer = model.layers[i]
    return f"layer {i} ({layer.name})" if getattr(layer, "name", "") else f"layer {i} ({layer.kind})"


def plan_regions(model: QModel, hw: HwConfig) -> tuple[dict, dict]:
    """Memory plan of a dense model: the region of every tensor (-1: the input, i: the
    output of layer i, the last layer's excluded) and whether its producer must clear it.

    Tensors are placed in order of definition, each at the lowest address past everything
    placed so far when that fits (so padding borders, cleared at load, stay zero), else at
    the lowest address free of every tensor live at the same time (liveness: from the
    producing layer to the last reader); a padded region placed over memory another tensor
    uses is cleared by its producer on every image."""
    L = len(model.layers)
    outs = model.out_shapes()
    pads = _tensor_pads(model)
    orders = _tensor_orders(model)
    last_use = {t: t for t in range(-1, L - 1)}
    for i, layer in enumerate(model.layers):
        for t in (model.source(i), getattr(layer, "skip", None)):
            if t is not None:
                last_use[t] = max(last_use[t], i)
    shape_of = {-1: tuple(int(s) for s in model.input_shape)}
    shape_of.update({i: tuple(outs[i]) for i in range(L - 1)})
    regs: dict[int, _Region] = {}
    top = 0
    for t in range(-1, L - 1):
        shp = shape_of[t]
        r = _Region(0, shp, pads[t] if len(shp) == 3 else 0, orders[t])
        if top + r.size <= hw.act_bytes:
            base = top
        else:
            live = sorted((regs[u].base, regs[u].base + regs[u].size) for u in regs
                          if not (last_use[u] < t or last_use[t] < u))
            base, found = 0, False
            for lo, hi in live + [(hw.act_bytes, hw.act_bytes)]:
                if base + r.size <= lo:
                    found = True
                    break
                base = max(base, hi)
            if not found:
                need = r.size + sum(hi - lo for lo, hi in live)
                raise CompileError(f"activations need {need} bytes at {'the input' if t < 0 else _lname(model, t)}, "
                                   f"overlay has ACT_BYTES={hw.act_bytes}: shrink the feature maps or build the "
                                   "overlay with a larger ACT_BYTES")
        regs[t] = _Region(base, shp, r.pad, r.order)
        top = max(top, base + r.size)
    clears = {}
    for t, r in regs.items():
        padded = len(r.shape) == 3 and any(r.pads)
        overlap = any(u != t and regs[u].base < r.base + r.size and r.base < regs[u].base + regs[u].size
                      for u in regs)
        clears[t] = t >= 0 and padded and overlap
    return regs, clears


def _row_entries(w_row: np.ndarray, layer: QLayer, tb: int, dense: bool, ic_of=None,
                 extra: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(k, weight) of one output channel's entries in index order. ``ic_of`` maps the
    row's (input channel, tap) grid to entry indices (default ``(ic << tb) + tap``);
    ``extra`` is one more (k, weight) entry (a residual add's)."""
    if layer.kind is not LayerKind.FC:
        c_in, kh, kw = w_row.shape
        taps = kh * kw
        flat = w_row.reshape(c_in, taps)
        ks = ic_of(c_in, kh, kw) if ic_of is not None else (np.arange(c_in)[:, None] << tb) + np.arange(taps)[None, :]
    else:
        flat = w_row.reshape(1, -1)
        ks = np.arange(flat.size)[None, :]
    ks = ks.reshape(-1).astype(np.int64)
    ws = flat.reshape(-1)
    if not dense:
        nz = ws != 0
        ks, ws = ks[nz], ws[nz]
    if extra is not None:
        ks = np.append(ks, extra[0])
        ws = np.append(ws, extra[1])
    order = np.argsort(ks, kind="stable")   # index order (virtual channels interleave input channels)
    ks, ws = ks[order], ws[order]
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


def _group(ks, ws, codes, offsets_of, P: int, Q: int, lanes: int, x_step: int = 1):
    """Pack a row's entries into groups of Q slots whose non-zero lanes never collide in a
    bank, ending a group early (and the row's last group) with a GROUP_END code.
    Returns (stream codes, stream weights, n_groups ≥ 1)."""
    if ks.size == 0:  # an all-zero row still produces its bias: one group of zero weights
        if Q == 1:
            return np.zeros(1, np.uint8), np.zeros(1, np.int8), 1
        return np.array([GROUP_END], np.uint8), np.zeros(1, np.int8), 1
    if Q == 1 and x_step == 1:
        return codes, ws, int(ks.size)
    out_c: list[int] = []
    out_w: list[int] = []
    used: dict[int, int] = {}  # bank → relative address of the open group's non-zero lanes
    fill = 0
    groups = 0
    lane_p = x_step * np.arange(P)
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


def _log2_ceil(n: int) -> int:
    return (n - 1).bit_length() if n > 1 else 0


@dataclass(frozen=True)
class _Indexing:
    """How a conv layer's entries address its input: ``k = (v << tb) + t`` reads
    ``v·in_ch_stride + tap_offset[t]`` from the window origin."""

    tb: int
    in_ch_stride: int
    taps: tuple
    ic_of: object          # (c_in, kh, kw) -> k grid (c_in, kh·kw)
    skip_k: object = None  # c -> k of the residual entry of output channel c


def _conv_indexing(layer: QLayer, index: int, rs: int, cs: int, skip_off: int | None,
                   order: str = "chw") -> _Indexing:
    """Entry index space of a conv layer with input strides ``rs``/``cs``: taps of one
    input channel in the tap table when they fit in 16 (with one more for a residual
    add); else one virtual channel per kernel row with its columns as taps — per row for a
    depthwise (or single-channel) kernel, per (row, input channel) on an ``hcw`` input,
    where virtual channel ``ky·C + c`` starts ``ky·rs + c·cs = (ky·C + c)·cs`` in."""
    kh, kw = layer.kernel
    if _needs_rows(layer):
        if order != "hcw":
            raise CompileError(f"{_lname_l(layer, index)}: a kernel with more than {N_TAPS} taps reads an hcw tensor")
        n_cols = kw + (1 if skip_off is not None else 0)
        if n_cols > N_TAPS:
            raise CompileError(f"{_lname_l(layer, index)}: kernel {kh}x{kw} is {kw} columns wide; kernels of more than "
                               f"{N_TAPS} taps may be at most {N_TAPS - (skip_off is not None)} wide")
        tb = _log2_ceil(n_cols)
        taps = list(range(kw)) + ([skip_off] if skip_off is not None else [])

        def ic_of(c_in_, kh_, kw_):
            v = np.arange(kh_)[None, :, None] * c_in_ + np.arange(c_in_)[:, None, None]   # (c, ky, 1)
            return ((v << tb) + np.arange(kw_)[None, None, :]).reshape(c_in_, kh_ * kw_)
        return _Indexing(tb, cs, tuple(taps), ic_of,
                         None if skip_off is None else (lambda c: (c << tb) + kw))
    n = kh * kw + (1 if skip_off is not None else 0)
    if n <= N_TAPS:
        tb = _log2_ceil(n)
        taps = [ky * rs + kx for ky in range(kh) for kx in range(kw)]
        skip_t = len(taps)
        if skip_off is not None:
            taps.append(skip_off)
        return _Indexing(tb, cs, tuple(taps),
                         lambda c_in, kh_, kw_: (np.arange(c_in)[:, None] << tb) + np.arange(kh_ * kw_)[None, :],
                         None if skip_off is None else (lambda c: (c << tb) + skip_t))
    if layer.depthwise or layer.c_in == 1:
        if skip_off is not None:
            raise CompileError(f"{_lname_l(layer, index)}: a residual add after a {kh}x{kw} depthwise kernel is not "
                               "supported (kernels with a residual add have at most 15 taps)")
        if kw > N_TAPS:
            raise CompileError(f"{_lname_l(layer, index)}: kernel {kh}x{kw} is {kw} columns wide; a depthwise (or "
                               f"single-channel) kernel of more than {N_TAPS} taps may be at most {N_TAPS} wide")
        tb = _log2_ceil(kw)
        return _Indexing(tb, rs, tuple(range(kw)),
                         lambda c_in, kh_, kw_: ((np.arange(kh_)[:, None] << tb)
                                                 + np.arange(kw_)[None, :]).reshape(1, -1))
    raise CompileError(f"{_lname_l(layer, index)}: kernel {kh}x{kw} has {kh * kw} taps; the engine supports at most "
                       f"{N_TAPS} per input channel{' with a residual add' if skip_off is not None else ''} (e.g. 3x3, "
                       "4x4, 1x7) except for depthwise kernels")


def _lname_l(layer: QLayer, index: int) -> str:
    return f"layer {index} ({layer.name})" if getattr(layer, "name", "") else f"layer {index} ({layer.kind})"


def _compile_layer(layer: QLayer, index: int, last: bool, reg_in: _Region, reg_out: _Region | None,
                   clear: bool, hw: HwConfig, dense: bool, in_shape, out_shape,
                   reg_skip: _Region | None = None) -> LayerProgram:
    lanes = hw.lanes
    x_step = 1
    in_c_step = 0
    skip_k = None
    if layer.kind is LayerKind.CONV:
        _, h, w = in_shape
        kh, kw = layer.kernel
        t, b, left, right = layer.pads
        sh, sw = layer.stride
        rs, cs = reg_in.row_stride, reg_in.ch_stride
        ho, wo = (h + t + b - kh) // sh + 1, (w + left + right - kw) // sw + 1
        origin = (reg_in.interior - t * rs - left) % hw.act_bytes
        skip_off = None
        if reg_skip is not None:
            if (reg_skip.row_stride, reg_skip.ch_stride) != (rs, cs) or (ho, wo) != (h, w) or layer.stride != (1, 1):
                raise CompileError(f"{_lname_l(layer, index)}: a residual add needs a stride-1 convolution that keeps "
                                   f"the map size ({h}x{w} -> {ho}x{wo}) and a skip tensor of the same layout")
            skip_off = (reg_skip.interior - origin) % (1 << 16)
        ix = _conv_indexing(layer, index, rs, cs, skip_off, reg_in.order)
        tb, in_cs, taps, ic_of = ix.tb, ix.in_ch_stride, list(ix.taps), ix.ic_of
        skip_k = ix.skip_k
        in_base, in_rs = origin, rs * sh
        x_step = sw
        if layer.depthwise:
            in_c_step = cs
    else:
        tb = 0
        ho = wo = 1
        taps = [0]
        in_cs = 1
        ic_of = None
        in_base, in_rs = reg_in.base, 0
    if layer.pool:
        h_it, w_need = 2 * (ho // 2), 2 * (wo // 2)
    else:
        h_it, w_need = ho, wo
    tap_offset = tuple(taps + [0] * (N_TAPS - len(taps)))

    def offsets_of(k: int) -> int:
        return ((k >> tb) * in_cs + tap_offset[k & ((1 << tb) - 1)]) & 0xFFFF

    def extra(c):
        return None if skip_k is None else (skip_k(c), int(layer.skip_mult[c]))

    rows = [_runs_with_fillers(*_row_entries(layer.weight[c], layer, tb, dense, ic_of, extra(c)))
            for c in range(layer.c_out)]
    if layer.kind is LayerKind.FC:
        p_options = [1]
    else:
        p_options = [1 << e for e in range(hw.lanes_log2 + 1) if (1 << e) >= (2 if layer.pool else 1)
                     and not (x_step == 2 and (1 << e) == lanes)]
    best = None
    for P in p_options:
        Q = lanes // P
        n_xt = -(-w_need // P)
        grouped = [_group(k, wv, cd, offsets_of, P, Q, lanes, x_step) for (k, wv, cd) in rows]
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
        in_base=in_base, in_row_stride=in_rs,
        out_base=out_base, out_row_stride=out_rs, out_ch_stride=out_cs,
        clear_base=clear_base, clear_len=clear_len, tap_offset=tap_offset, xs2=int(x_step == 2),
        in_c_step=in_c_step)
    for nm in ("in_row_stride", "in_ch_stride", "in_c_step", "out_row_stride", "out_ch_stride"):
        if getattr(desc, nm) >= hw.act_bytes:
            raise CompileError(f"{_lname_l(layer, index)}: {nm}={getattr(desc, nm)} does not fit ACT_BYTES="
                               f"{hw.act_bytes}")
    chans = tuple(ChannelRec(bias=int(layer.bias[c]), mult=int(layer.mult[c]) if not last else 1,
                             shift=int(layer.shift[c]) if not last else 1, n_groups=int(grouped[c][2]))
                  for c in range(layer.c_out))
    codes = np.concatenate([g[0] for g in grouped]).astype(np.uint8)
    weights = np.concatenate([g[1] for g in grouped]).astype(np.int8)
    return LayerProgram(desc=desc, channels=chans, codes=codes, weights=weights)


def _check_acc_bound(model: QModel) -> None:
    for i, layer in enumerate(model.layers):
        if not layer.kind.weighted:
            continue
        wabs = np.abs(layer.weight.astype(np.int64)).reshape(layer.c_out, -1).sum(axis=1)
        if getattr(layer, "skip_mult", None) is not None:
            wabs = wabs + np.abs(np.asarray(layer.skip_mult, np.int64))
        bound = wabs * 128 + np.abs(layer.bias.astype(np.int64))
        if np.any(bound >= 2 ** 31):
            raise CompileError(f"layer {i}: the int32 accumulator could overflow (bound {int(bound.max())}); "
                               "re-quantise with smaller weights or bias")


def input_layout(model: QModel) -> InputLayout:
    shape = tuple(int(s) for s in model.input_shape)
    if model.reduce is not None:
        first = model.layers[0]
        pads = (first.padding,) * 4 if first.kind is LayerKind.SCONV else (0,) * 4
        order = "chw"
    else:
        pads = _tensor_pads(model)[-1]
        order = _tensor_orders(model)[-1]
    c, h, w = shape
    t, b, left, right = pads
    return InputLayout(shape=shape, pads=tuple(pads), in_bytes=c * (h + t + b) * (w + left + right), order=order)


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
    outs = model.out_shapes()
    layers = []
    for i, layer in enumerate(model.layers):
        last = i == L - 1
        sk = getattr(layer, "skip", None)
        layers.append(_compile_layer(layer, i, last, regs[model.source(i)], None if last else regs[i],
                                     False if last else clears[i], hw, dense, shapes[i], outs[i],
                                     reg_skip=None if sk is None else regs[sk]))
    top = max(r.base + r.size for r in regs.values())
    act_log2 = max(0, (top - 1).bit_length())
    lay = input_layout(model)
    prog = Program(lanes=hw.lanes, in_base=regs[-1].base, in_bytes=lay.in_bytes, n_out=model.layers[-1].c_out,
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
    dense = sum(int(layer.weight.size) for layer in model.layers if layer.kind.weighted)
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


def _bank_spread_pads(shape, padding, kernel, lanes: int) -> tuple:
    """Padding of a SITES convolution's input map, widened at the right and bottom so that
    the entries of a row fall in consecutive banks: with row stride ≡ K_w and channel
    stride ≡ K_h·K_w (mod LANES), entry ``(c, ky, kx)`` reads bank ``(c·K_h + ky)·K_w + kx``
    (mod LANES) relative to the site, so the non-zero weights listed in index order (all a
    SITES row holds: P = 1, Q = LANES) collide in a bank only when they are LANES or more
    dense positions apart."""
    t, b, left, right = _pads4(padding)
    kh, kw = kernel
    _, h, w = shape
    er = (kw - (w + left + right)) % lanes
    rs = w + left + right + er
    want = (kh * kw) % lanes
    eb = next((e for e in range(lanes) if ((h + t + b + e) * rs - want) % lanes == 0), 0)
    return (t, b + eb, left, right + er)


def _sparse_entries(rows_k, rows_w, offsets_of, lanes: int, dense: bool):
    grouped = []
    for ks, ws in zip(rows_k, rows_w):
        if not dense:
            nz = ws != 0
            ks, ws = ks[nz], ws[nz]
        grouped.append(_group(*_runs_with_fillers(ks, ws), offsets_of, 1, lanes, lanes))
    return grouped


@dataclass(frozen=True)
class _SitesStep:
    """What lowering one layer of a sparse-pixel model needs besides the layer: its input
    region (with its row and channel strides), its output (address and strides, 0/0/1 for
    the last layer), the SCRUB flag and the site list it reads."""

    index: int
    last: bool
    r_in: _Region
    rs: int
    cs: int
    r_out: _Region | None
    out: tuple          # (out_base, out_row_stride, out_ch_stride)
    scrub: int
    in_list: int
    in_shape: tuple
    out_shape: tuple


def _sites_region_fc(layer, shape, base: int, lanes: int, spread: bool = False):
    rs, cs = (shape[2], shape[1] * shape[2]) if len(shape) == 3 else (1, 1)
    return _Region(base, (int(np.prod(shape)),), 0), rs, cs


def _sites_region_sconv(layer, shape, base: int, lanes: int, spread: bool = False):
    """The padded input map; ``spread``: with bank-spreading padding (:func:`_bank_spread_pads`)."""
    r = _Region(base, shape, _bank_spread_pads(shape, layer.padding, layer.kernel, lanes) if spread else layer.padding)
    return r, r.row_stride, r.ch_stride


def _sites_region_spool(layer, shape, base: int, lanes: int, spread: bool = False):
    """An unpadded grid with a bank-conflict-free row stride."""
    c, h, w = shape
    rs = _pool_row_stride(w, lanes)
    return _Region(base, (c, h, rs), 0), rs, h * rs


def _lower_sites_fc(layer, st: _SitesStep, hw: HwConfig, dense: bool):
    lp = _compile_layer(layer, st.index, st.last, st.r_in, st.r_out, False, hw, dense, st.in_shape, st.out_shape)
    d = lp.desc
    if not st.last and len(st.out_shape) == 1:
        d = replace(d, out_row_stride=1, out_ch_stride=1)
    return replace(lp, desc=replace(d, flags=d.flags | st.scrub)), st.in_list


def _sconv_rows(layer, rs: int, cs: int, lanes: int, dense: bool):
    """A SITES convolution's rows on an input map of row stride ``rs`` and channel stride
    ``cs``: (tb, tap_offset, grouped rows)."""
    tb = _tb_for(layer)
    kh, kw = layer.kernel
    taps = [ky * rs + kx for ky in range(kh) for kx in range(kw)]
    tap_offset = tuple(taps + [0] * (N_TAPS - len(taps)))

    def offsets_of(k):
        return ((k >> tb) * cs + tap_offset[k & ((1 << tb) - 1)]) & 0xFFFF

    rows = [_row_entries(layer.weight[c], layer, tb, True) for c in range(layer.c_out)]
    return tb, tap_offset, _sparse_entries([r[0] for r in rows], [r[1] for r in rows], offsets_of, lanes, dense)


def _lower_sites_sconv(layer, st: _SitesStep, hw: HwConfig, dense: bool):
    """A SITES layer over the site list: one tile per active site."""
    _, h, w = st.in_shape
    rs, cs = st.rs, st.cs
    tb, tap_offset, grouped = _sconv_rows(layer, rs, cs, hw.lanes, dense)
    ob, ors, ocs = st.out
    desc = LayerDesc(flags=F_SITES | st.scrub | (F_RELU if layer.relu else 0), p_log2=0, q_log2=hw.lanes_log2, tb=tb,
                     c_out=layer.c_out, h_it=h, n_xt=1, w_valid=w, in_ch_stride=cs, in_base=st.r_in.base,
                     in_row_stride=rs, out_base=ob, out_row_stride=ors, out_ch_stride=ocs, tap_offset=tap_offset,
                     in_list=st.in_list, out_list=st.in_list)
    chans = tuple(ChannelRec(bias=int(layer.bias[c]), mult=int(layer.mult[c]), shift=int(layer.shift[c]),
                             n_groups=int(grouped[c][2])) for c in range(layer.c_out))
    return _sites_program(desc, chans, grouped), st.in_list


def _lower_sites_spool(layer, st: _SitesStep, hw: HwConfig, dense: bool):
    """A SITES layer over the pooled cells of the site list (POOLSITES), written to the
    other list: four window entries of weight 1 per channel, merged by MAXRED or AVG."""
    c_in, h, w = st.in_shape
    rs, cs = st.rs, st.cs
    tap_offset = (0, 1, rs, rs + 1) + (0,) * (N_TAPS - 4)

    def offsets_of(k):
        return ((k >> 2) * cs + tap_offset[k & 3]) & 0xFFFF

    ks = [np.arange(4, dtype=np.int64) + 4 * c for c in range(c_in)]
    ws = [np.ones(4, np.int8) for _ in range(c_in)]
    grouped = _sparse_entries(ks, ws, offsets_of, hw.lanes, dense)
    ob, ors, ocs = st.out
    flags = F_SITES | F_POOLSITES | st.scrub | (F_MAXRED if layer.mode == "max" else F_AVG)
    desc = LayerDesc(flags=flags, p_log2=0, q_log2=hw.lanes_log2, tb=2, c_out=c_in, h_it=h // 2, n_xt=1,
                     w_valid=w // 2, in_ch_stride=cs, in_base=st.r_in.interior, in_row_stride=rs, out_base=ob,
                     out_row_stride=ors, out_ch_stride=ocs, tap_offset=tap_offset, in_list=st.in_list,
                     out_list=1 - st.in_list)
    chans = tuple(ChannelRec(bias=0, mult=1, shift=1, n_groups=int(g[2])) for g in grouped)
    return _sites_program(desc, chans, grouped), 1 - st.in_list


def _sites_program(desc: LayerDesc, chans: tuple, grouped: list) -> LayerProgram:
    return LayerProgram(desc=desc, channels=chans, codes=np.concatenate([g[0] for g in grouped]).astype(np.uint8),
                        weights=np.concatenate([g[1] for g in grouped]).astype(np.int8))


# sparse-pixel models, by layer kind: (input region, lowering); a lowering returns the
# layer's program and the site list the next layer reads
_LOWER_SITES = {
    LayerKind.FC: (_sites_region_fc, _lower_sites_fc),
    LayerKind.SCONV: (_sites_region_sconv, _lower_sites_sconv),
    LayerKind.SPOOL: (_sites_region_spool, _lower_sites_spool),
}


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
    n_sparse = next(i for i, layer in enumerate(layers_m) if not layer.kind.sparse)
    if input_mode == "reduce" and shapes[0][0] != 1:
        raise CompileError("hardware input reduce needs a single-channel input; use input_mode='sites'")
    if input_mode == "sites" and shapes[0][0] > 6:
        raise CompileError("pre-reduced site packets carry at most 6 channels")
    for i, layer in enumerate(layers_m):
        if layer.kind is LayerKind.SPOOL and (shapes[i][1] // 2 > POOLSITES_MAX or shapes[i][2] // 2 > POOLSITES_MAX):
            raise CompileError(f"sparse pooling layer {i} ({layer.name or 'spool'}): pooled grid "
                               f"{shapes[i][1] // 2}x{shapes[i][2] // 2}, the overlay pools sites on grids of at most "
                               f"{POOLSITES_MAX}x{POOLSITES_MAX} (input maps up to "
                               f"{2 * POOLSITES_MAX + 1}x{2 * POOLSITES_MAX + 1})")
    # regions: input of every layer, disjoint. SITES convolutions after the first get
    # bank-spreading padding where it saves groups and the memory allows it (largest
    # saving first).
    def plan(spread: set) -> tuple[list, int]:
        regs, base = [], 0
        for i, layer in enumerate(layers_m):
            r, rs, cs = _LOWER_SITES[layer.kind][0](layer, shapes[i], base, lanes, i in spread)
            regs.append((r, rs, cs))
            base += r.size
        return regs, base

    regs, base = plan(set())
    if base > hw.act_bytes:
        raise CompileError(f"sparse-pixel maps need {base} bytes of activation memory, overlay has "
                           f"ACT_BYTES={hw.act_bytes}: use smaller maps or fewer channels")
    gain = {}
    for i in range(1, L):
        if layers_m[i].kind is LayerKind.SCONV:
            _, rs1, cs1 = plan({i})[0][i]
            g0, g1 = (sum(g[2] for g in _sconv_rows(layers_m[i], rs_, cs_, lanes, dense)[2])
                      for rs_, cs_ in (regs[i][1:], (rs1, cs1)))
            if g1 < g0:
                gain[i] = g0 - g1
    spread: set = set()
    for i in sorted(gain, key=lambda i: (-gain[i], i)):
        if plan(spread | {i})[1] <= hw.act_bytes:
            spread.add(i)
    regs, base = plan(spread)
    out_layers = []
    cur = 0
    for i, layer in enumerate(layers_m):
        last = i == L - 1
        r_in, rs, cs = regs[i]
        if last:
            r_out, out = None, (0, 0, 1)
        else:
            r_out, ors, ocs = regs[i + 1]
            out = (r_out.interior, ors, ocs)
        scrub = F_SCRUB if (i > 0 and i <= n_sparse) or (i == 0 and input_mode == "sites") else 0
        st = _SitesStep(i, last, r_in, rs, cs, r_out, out, scrub, cur, shapes[i], shapes[i + 1])
        lp, cur = _LOWER_SITES[layer.kind][1](layer, st, hw, dense)
        out_layers.append(lp)
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
