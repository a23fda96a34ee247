"""A deliberately plain numpy implementation of docs/hardware.md "Arithmetic", used by
tests as an independent check (loops over kernel taps; no shared code with the golden
model or the compiler)."""

import numpy as np
from zeroskip.host.quant.qmodel import LayerKind


def requant(acc, mult, shift, relu):
    y = (acc.astype(np.int64) * mult + (np.int64(1) << (shift - 1))) >> shift
    if relu:
        y = np.maximum(y, 0)
    return np.clip(y, -128, 127)


def forward(model, x):
    """int8 (N, C, H, W) → int32 (N, n_out)."""
    outs = []
    for img in np.asarray(x):
        a = img.astype(np.int64)
        for i, layer in enumerate(model.layers):
            last = i == len(model.layers) - 1
            if layer.kind is LayerKind.CONV:
                p = layer.padding
                a2 = np.pad(a, ((0, 0), (p, p), (p, p)))
                co, ci, kh, kw = layer.weight.shape
                ho, wo = a2.shape[1] - kh + 1, a2.shape[2] - kw + 1
                acc = np.zeros((co, ho, wo), np.int64)
                for ky in range(kh):
                    for kx in range(kw):
                        acc += np.einsum("oc,chw->ohw", layer.weight[:, :, ky, kx].astype(np.int64),
                                         a2[:, ky:ky + ho, kx:kx + wo])
                acc += layer.bias.astype(np.int64)[:, None, None]
                y = requant(acc, layer.mult.astype(np.int64)[:, None, None], layer.shift.astype(np.int64)[:, None, None],
                            layer.relu)
                if layer.pool:
                    h2, w2 = ho // 2, wo // 2
                    y = y[:, :2 * h2, :2 * w2].reshape(co, h2, 2, w2, 2).max(axis=(2, 4))
                a = y
            else:
                acc = layer.weight.astype(np.int64) @ a.reshape(-1) + layer.bias.astype(np.int64)
                if last:
                    outs.append(acc)
                    break
                a = requant(acc, layer.mult.astype(np.int64), layer.shift.astype(np.int64), layer.relu)
    return np.array(outs, dtype=np.int64).astype(np.int32)


AVG_R = (0, 65536, 32768, 21845, 16384)


def forward_sparse(model, x):
    """Sparse-pixel semantics (docs/sparse_pixels.md), site by site."""
    outs = []
    red = model.reduce
    for img in np.asarray(x):
        c0, h, w = img.shape
        act = np.zeros_like(img, dtype=np.int64)
        sites = []
        for yy in range(h):
            for xx in range(w):
                if int(img[0, yy, xx]) > red.threshold and len(sites) < red.n_max:
                    sites.append((yy, xx))
                    act[:, yy, xx] = img[:, yy, xx]
        counts = {s: 1 for s in sites}
        a = act
        for i, layer in enumerate(model.layers):
            if layer.kind is LayerKind.SCONV:
                k = layer.kernel[0]
                p = k // 2
                ap = np.pad(a, ((0, 0), (p, p), (p, p)))
                new = np.zeros((layer.c_out,) + a.shape[1:], np.int64)
                for (yy, xx) in sites:
                    win = ap[:, yy:yy + k, xx:xx + k]
                    acc = (layer.weight.astype(np.int64) * win[None]).sum(axis=(1, 2, 3)) + layer.bias
                    new[:, yy, xx] = requant(acc, layer.mult.astype(np.int64), layer.shift.astype(np.int64),
                                             layer.relu)
                a = new
            elif layer.kind is LayerKind.SPOOL:
                hh, ww = a.shape[1] // 2, a.shape[2] // 2
                cells = {}
                for (yy, xx) in sites:
                    cell = (yy // 2, xx // 2)
                    if cell[0] < hh and cell[1] < ww:
                        cells.setdefault(cell, []).append((yy, xx))
                new = np.zeros((a.shape[0], hh, ww), np.int64)
                for cell, members in cells.items():
                    vals = np.stack([a[:, yy, xx] for yy, xx in members], axis=1)
                    if layer.mode == "max":
                        new[:, cell[0], cell[1]] = vals.max(axis=1)
                    else:
                        new[:, cell[0], cell[1]] = (vals.sum(axis=1) * AVG_R[len(members)] + (1 << 15)) >> 16
                a = new
                sites = list(cells)
            else:
                acc = layer.weight.astype(np.int64) @ a.reshape(-1) + layer.bias.astype(np.int64)
                if i == len(model.layers) - 1:
                    outs.append(acc)
                    break
                a = requant(acc, layer.mult.astype(np.int64), layer.shift.astype(np.int64), layer.relu)
    return np.array(outs, dtype=np.int64).astype(np.int32)
