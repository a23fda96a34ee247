"""Write a bundle (docs/bundle.md) atomically: everything goes into a temporary sibling
folder that is renamed into place only when complete, so an interrupted export never
leaves a half bundle that loads."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from zeroskip.driver import contract as C
from zeroskip.driver.bundle import BUNDLE_FORMAT, BUNDLE_VERSION, MANIFEST, pack_inputs, sha256_file
from zeroskip.driver.errors import CompileError
from zeroskip.driver.golden import GoldenEngine
from zeroskip.driver.program import HwConfig, Program, encode_program, store_hex

import zeroskip

from zeroskip.host.compiler.lowering import compile_model, weight_bytes
from zeroskip.host.quant.qmodel import QModel


def inspection_arrays(model: QModel) -> tuple[np.ndarray, np.ndarray, dict]:
    """(indices uint16, values int8, metadata) of every non-zero weight, layer by layer and
    output channel by output channel; an index is the weight's position in its row
    (c_in·K_h·K_w + ky·K_w + kx for a convolution, the input index for FC)."""
    idx_parts, val_parts, layers = [], [], []
    pos = 0
    for i, layer in enumerate(model.layers):
        if not layer.kind.weighted:  # sparse pooling has no weights
            layers.append({"name": layer.name or f"layer{i}", "kind": layer.kind, "shape": [], "base_offset": pos,
                           "channel_segments": []})
            continue
        rows = layer.weight.reshape(layer.c_out, -1)
        if rows.shape[1] > 65535:
            raise ValueError(f"layer {i}: rows of {rows.shape[1]} weights do not fit 16-bit indices")
        segs = []
        base = pos
        for r in rows:
            nz = np.flatnonzero(r)
            segs.append([pos, int(nz.size)])
            idx_parts.append(nz.astype(np.uint16))
            val_parts.append(r[nz].astype(np.int8))
            pos += nz.size
        entry = {"name": layer.name or f"layer{i}", "kind": layer.kind, "shape": list(layer.weight.shape),
                 "base_offset": base, "channel_segments": segs}
        if getattr(layer, "skip_mult", None) is not None:   # residual add: one more entry per row
            entry["skip_mult"] = [int(m) for m in layer.skip_mult]
        layers.append(entry)
    meta = {"index_dtype": "uint16-le", "value_dtype": "int8",
            "index_meaning": "position in the output channel's row: c_in*Kh*Kw + ky*Kw + kx (conv), input index (fc)",
            "segment_meaning": "[offset, length] into the index/value arrays, one per output channel",
            "skip_mult_meaning": "residual add: the int8 weight of the skip tensor's value, one per output channel",
            "layers": layers}
    return (np.concatenate(idx_parts) if idx_parts else np.zeros(0, np.uint16),
            np.concatenate(val_parts) if val_parts else np.zeros(0, np.int8), meta)


def program_stats(model: QModel, prog: Program, dense: Program, hw: HwConfig, packed,
                  dense_hw: HwConfig | None = None) -> dict:
    """Predicted per-inference figures from the golden model over the bundle's inputs
    (exact per image; averaged when the cycles depend on the data, as in sparse-pixel mode)."""
    res = {}
    for key, p in (("sparse", prog), ("dense", dense)):
        eng = GoldenEngine(hw if key == "sparse" else (dense_hw or hw))
        eng.load(encode_program(p))
        eng.run_images(packed)
        n = len(eng.image_cycles)
        res[key] = (sum(eng.image_cycles) / n, [
            (sum(im[i][0] for im in eng.image_layers) / n, sum(im[i][1] for im in eng.image_layers) / n)
            for i in range(len(p.layers))])
    wd, wc = weight_bytes(model, prog)
    layers = []
    macs_dense = 0
    for i, (layer, lp) in enumerate(zip(model.layers, prog.layers)):
        md = int(layer.weight.size) * _pixels(lp) if layer.kind.weighted and not lp.desc.sites \
            else None
        macs_dense += md or 0
        layers.append({"name": layer.name or f"layer{i}", "P": lp.desc.P, "Q": lp.desc.Q,
                       "cycles_sparse": res["sparse"][1][i][0], "cycles_dense": res["dense"][1][i][0],
                       "macs_sparse": res["sparse"][1][i][1], "macs_dense": md if md is not None else
                       res["dense"][1][i][1]})
    if any(lp.desc.sites for lp in prog.layers):
        macs_dense = sum(lay["macs_dense"] for lay in layers)
    return {"cycles_sparse": res["sparse"][0], "cycles_dense": res["dense"][0],
            "macs_sparse": sum(lay["macs_sparse"] for lay in layers), "macs_dense": macs_dense,
            "weight_bytes_dense": wd, "weight_bytes_compressed": wc, "layers": layers}


def _dense_grid(model: QModel, hw: HwConfig) -> dict:
    """Sparse-pixel models: the cycles of the same network computed densely over the whole
    grid with every weight (``dense_grid_twin`` in dense mode, data-independent), the
    baseline of the sparse-pixel speedup; the golden model's count, on an overlay with
    unbounded capacities when it does not fit this one."""
    if model.reduce is None:
        return {}
    from zeroskip.driver.golden import image_timing
    from zeroskip.host.quant.qmodel import dense_grid_twin

    twin = dense_grid_twin(model)
    try:
        prog = compile_model(twin, hw, dense=True)
    except CompileError:
        prog = compile_model(twin, hw.unbounded(), dense=True)
    return {"cycles_dense_grid": int(image_timing(prog)["total"])}


def _pixels(lp) -> int:
    """Output pixels of one channel the layer computes (rows iterated × valid width)."""
    return lp.desc.h_it * lp.desc.w_valid


def _write(folder: Path, name: str, data: bytes | str) -> None:
    p = folder / name
    if isinstance(data, str):
        p.write_text(data)
    else:
        p.write_bytes(data)


def export_bundle(out_dir: str | Path, model: QModel, hw: HwConfig, inputs: np.ndarray, expected: np.ndarray,
                  labels: np.ndarray | None = None, info: dict | None = None, input_mode: str = "sites",
                  input_shape: tuple | None = None) -> Path:
    """Compile ``model`` (sparse and dense) and write the bundle to ``out_dir``.

    ``inputs``: int8 (N, C, H, W) test images; ``expected``: int32 (N, n_out) from the
    integer reference; ``input_shape``: the shape users feed (e.g. (F,) for an MLP whose
    engine input is (F, 1, 1)). Returns the bundle path."""
    out_dir = Path(out_dir)
    inputs = np.asarray(inputs)
    expected = np.asarray(expected)
    if inputs.dtype != np.int8 or inputs.ndim != 4:
        raise ValueError(f"inputs must be int8 (N, C, H, W), got {inputs.dtype}{inputs.shape}")
    if expected.dtype != np.int32 or expected.shape != (inputs.shape[0], model.layers[-1].c_out):
        raise ValueError(f"expected must be int32 ({inputs.shape[0]}, {model.layers[-1].c_out}), got "
                         f"{expected.dtype}{expected.shape}")
    prog = compile_model(model, hw, input_mode=input_mode)
    dense_note = None
    try:
        dense = compile_model(model, hw, dense=True, input_mode=input_mode)
        dense_hw = hw
    except CompileError as e:
        # the dense baseline (every weight an entry) can exceed the overlay a pruned model
        # fits: the bundle then has no program_dense.bin, and its dense figures are the
        # golden model's prediction on an overlay with unbounded capacities
        dense_note = f"the dense-mode program does not fit this overlay ({e}); dense figures are predicted"
        dense_hw = hw.unbounded()
        dense = compile_model(model, dense_hw, dense=True, input_mode=input_mode)
    packed = pack_inputs(inputs, prog.meta["input_layout"])
    beats, dbeats = encode_program(prog), encode_program(dense)
    idx, vals, meta = inspection_arrays(model)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        _write(tmp, "program.bin", beats.astype("<u8").tobytes())
        if dense_note is None:
            _write(tmp, "program_dense.bin", dbeats.astype("<u8").tobytes())
        _write(tmp, "program.hex", "".join(f"{int(b):016x}\n" for b in beats))
        _write(tmp, "weight_store.hex", store_hex(prog, hw))
        _write(tmp, "weights_indices.bin", idx.astype("<u2").tobytes())
        _write(tmp, "weights_values.bin", vals.tobytes())
        _write(tmp, "weights_metadata.json", json.dumps(meta, indent=1))
        np.save(tmp / "inputs.npy", inputs)
        np.save(tmp / "expected.npy", expected.astype(np.int32))
        if labels is not None:
            np.save(tmp / "labels.npy", np.asarray(labels, np.int64))
        files = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in sorted(tmp.iterdir())}
        manifest = {
            "format": BUNDLE_FORMAT, "bundle_version": BUNDLE_VERSION, "program_format_version": C.FORMAT_VERSION,
            "zeroskip_version": zeroskip.__version__, "hw": hw.to_dict(), "ip_vlnv": C.VLNV,
            "model": {"name": model.name, "input_scale": model.input_scale,
                      "output_scale": float(model.layers[-1].out_scale), "head": model.meta.get("head"),
                      "input_shape": [int(s) for s in (input_shape or model.input_shape)], **(info or {})},
            "input_layout": prog.meta["input_layout"], "n_out": int(prog.n_out), "n_samples": int(inputs.shape[0]),
            "predicted": {**program_stats(model, prog, dense, hw, packed, dense_hw), **_dense_grid(model, hw)},
            "files": files,
            "dense_program": {"included": dense_note is None, "note": dense_note},
        }
        _write(tmp, MANIFEST, json.dumps(manifest, indent=1, default=_json_default))
        os.chmod(tmp, 0o755)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")
