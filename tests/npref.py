"""A deliberately plain numpy implementation of docs/hardware.md "Arithmetic", used by
tests as an independent check (loops over kernel taps; no shared code with the golden
model or the compiler)."""

import numpy as np


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
            if layer.kind == "conv":
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
