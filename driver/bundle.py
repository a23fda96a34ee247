"""Bundle: the folder that carries a compiled model from the PC to the board.

Loading checks everything before any DMA: the manifest parses, its format versions match
this software, every listed file exists with the recorded size and sha256, the programs
decode under the bundle's hardware config, the files derived from the program agree with
it, and inputs/expected outputs have the shapes the program needs. Every failure is a
:class:`BundleError` naming the file and the fix.
Layout: docs/bundle.md. numpy only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import contract as C
from .errors import BundleError, ProgramError
from .program import F_AVG, F_MAXRED, GROUP_END, HwConfig, Program, decode_program, store_hex

BUNDLE_FORMAT = "zeroskip-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
REQUIRED = ("program.bin", "inputs.npy", "expected.npy", "weights_indices.bin",
            "weights_values.bin", "weights_metadata.json", "weight_store.hex", "program.hex")




def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class Bundle:
    path: Path
    manifest: dict
    hw: HwConfig
    program_beats: np.ndarray
    dense_beats: np.ndarray | None   # None: the dense-mode program does not fit the overlay
    program: Program
    dense_program: Program | None
    inputs: np.ndarray  # int8 (N, C, H, W)
    expected: np.ndarray  # int32 (N, n_out)
    labels: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def input_layout(self) -> dict:
        return self.manifest["input_layout"]

    @property
    def n_out(self) -> int:
        return int(self.manifest["n_out"])

    def packed_inputs(self, x: np.ndarray | None = None):
        """int8 images → the engine's input format (see :func:`pack_inputs`)."""
        return pack_inputs(self.inputs if x is None else x, self.input_layout)


def pack_inputs(x_int8: np.ndarray, layout: dict):
    """int8 images (N, C, H, W) → what the engine's input port takes.

    Dense layouts (and the hardware-reduce mode): uint8 (N, in_bytes) — H and W zero-padded
    (``pads`` top, bottom, left, right, or ``pad`` on every side) and flattened in
    ``order`` (``chw``, or ``hcw``: each padded row of every channel in turn).
    Pre-reduced sparse-pixel layouts (``mode == "sites"``): a list
    of uint64 beat arrays, one per image (:func:`pack_sites`)."""
    x = np.asarray(x_int8)
    if x.dtype != np.int8:
        raise ValueError(f"inputs must be int8, got {x.dtype}")
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(layout["shape"]):
        raise ValueError(f"inputs have shape {tuple(x.shape[1:])}, the bundle expects {tuple(layout['shape'])}")
    if layout.get("mode") == "sites":
        return pack_sites(x, int(layout["threshold"]), int(layout["n_max"]))
    t, b, left, right = layout_pads(layout)
    x = np.pad(x, ((0, 0), (0, 0), (t, b), (left, right)))
    order = layout.get("order", "chw")
    if order == "hcw":      # rows of all channels one after the other (docs/hardware.md)
        x = np.ascontiguousarray(x.transpose(0, 2, 1, 3))
    elif order != "chw":
        raise ValueError(f"input layout order must be 'chw' or 'hcw', got {order!r}")
    out = x.reshape(x.shape[0], -1).view(np.uint8)
    if out.shape[1] != int(layout["in_bytes"]):
        raise ValueError(f"packed image has {out.shape[1]} bytes, layout says {layout['in_bytes']}")
    return out


def layout_pads(layout: dict) -> tuple:
    """(top, bottom, left, right) zero padding of a dense input layout: ``pads`` when the
    sides differ, else ``pad`` on every side."""
    if "pads" in layout:
        pads = tuple(int(p) for p in layout["pads"])
        if len(pads) != 4 or min(pads) < 0:
            raise ValueError(f"input layout pads must be four non-negative integers, got {layout['pads']}")
        return pads
    return (int(layout["pad"]),) * 4


def reduce_sites(img: np.ndarray, threshold: int, n_max: int) -> np.ndarray:
    """Input reduce of one int8 image (C, H, W): (y, x) of the first ``n_max`` pixels in
    raster order whose channel 0 exceeds ``threshold``; int64 (n, 2)."""
    ys, xs = np.nonzero(img[0].astype(np.int16) > threshold)
    return np.stack([ys, xs], axis=1)[:n_max].astype(np.int64)


def pack_sites(x_int8: np.ndarray, threshold: int, n_max: int) -> list:
    """Pre-reduced site packets (docs/hardware.md "Sparse-pixel mode"): per image one
    count beat, then one beat per kept site: y, x, then the C channel values."""
    out = []
    c = x_int8.shape[1]
    if c > 6:
        raise ValueError(f"site packets carry at most 6 channels, the images have {c}")
    for img in x_int8:
        st = reduce_sites(img, threshold, n_max)
        beats = np.zeros(1 + len(st), np.uint64)
        beats[0] = len(st)
        if len(st):
            vals = img[:, st[:, 0], st[:, 1]].view(np.uint8).astype(np.uint64)  # (C, n)
            w = st[:, 0].astype(np.uint64) | (st[:, 1].astype(np.uint64) << np.uint64(8))
            for ch in range(c):
                w |= vals[ch] << np.uint64(16 + 8 * ch)
            beats[1:] = w
        out.append(beats)
    return out


def read_beats(path: Path) -> np.ndarray:
    raw = Path(path).read_bytes()
    if len(raw) % 8:
        raise BundleError(f"{Path(path).name}: {len(raw)} bytes is not a whole number of 64-bit beats; "
                          "the file is truncated or corrupt: re-export the bundle")
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64)


def load_bundle(path: str | Path, *, verify: bool = True) -> Bundle:
    """Load and check a bundle folder."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: not a bundle folder (no such directory); run `zeroskip export` to make one")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{mpath}: missing manifest; the folder is not a complete bundle: re-export it")
    try:
        man = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{mpath}: manifest is not valid JSON ({e}); re-export the bundle") from None
    if not isinstance(man, dict) or man.get("format") != BUNDLE_FORMAT:
        fmt = man.get("format") if isinstance(man, dict) else None
        raise BundleError(f"{mpath}: not a zeroskip bundle manifest (format={fmt!r}); re-export the bundle")
    if man.get("bundle_version") != BUNDLE_VERSION:
        raise BundleError(f"{mpath}: bundle version {man.get('bundle_version')}, this zeroskip reads version "
                          f"{BUNDLE_VERSION}: re-export the bundle with this zeroskip version")
    if man.get("program_format_version") != C.FORMAT_VERSION:
        raise BundleError(f"{mpath}: program format version {man.get('program_format_version')}, this zeroskip and "
                          f"overlay use {C.FORMAT_VERSION}: re-export the bundle with this zeroskip version")
    files = man.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{mpath}: manifest has no 'files' table; re-export the bundle")
    for name in REQUIRED:
        if name not in files:
            raise BundleError(f"{mpath}: manifest lists no {name}; re-export the bundle")
    for name, rec in files.items():
        fp = path / name
        if not isinstance(rec, dict):
            raise BundleError(f"{mpath}: the entry of {name} has no size and sha256; re-export the bundle")
        if Path(name).name != name:
            raise BundleError(f"{mpath}: file name {name!r} is not a plain file name; re-export the bundle")
        if not fp.is_file():
            raise BundleError(f"{fp}: missing file listed in the manifest; copy the whole bundle folder again")
        if verify:
            size = fp.stat().st_size
            if size != rec.get("bytes"):
                raise BundleError(f"{fp}: {size} bytes, manifest says {rec.get('bytes')}: the file is truncated or "
                                  "was changed; copy the bundle again or re-export it")
            if sha256_file(fp) != rec.get("sha256"):
                raise BundleError(f"{fp}: sha256 differs from the manifest: the file is corrupt or was edited; "
                                  "copy the bundle again or re-export it")
    try:
        hw = HwConfig.from_dict(man["hw"])
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{mpath}: bad hardware config 'hw' ({e}); re-export the bundle") from None
    beats = read_beats(path / "program.bin")
    dense = read_beats(path / "program_dense.bin") if "program_dense.bin" in files else None
    if dense is None and man.get("dense_program", {}).get("included", True):
        raise BundleError(f"{mpath}: manifest lists no program_dense.bin; re-export the bundle")
    progs = []
    for nm, b in (("program.bin", beats), ("program_dense.bin", dense)):
        if b is None:
            progs.append(None)
            continue
        try:
            progs.append(decode_program(b, hw))
        except ProgramError as e:
            raise BundleError(f"{path / nm}: the program does not decode: {e}; re-export the bundle") from None
    inputs = _load_npy(path / "inputs.npy", np.int8, 4)
    if int(man.get("n_samples", inputs.shape[0])) != inputs.shape[0]:
        raise BundleError(f"{path / 'inputs.npy'}: {inputs.shape[0]} images, the manifest says n_samples="
                          f"{man.get('n_samples')}; re-export the bundle")
    expected = _load_npy(path / "expected.npy", np.int32, 2)
    labels = _load_npy(path / "labels.npy", None, 1) if "labels.npy" in files else None
    if labels is not None and labels.shape[0] != inputs.shape[0]:
        raise BundleError(f"{path / 'labels.npy'}: {labels.shape[0]} labels for {inputs.shape[0]} images; "
                          "re-export the bundle")
    prog = progs[0]
    _check_derived(path, beats, prog, hw)
    lay = man.get("input_layout", {})
    if tuple(lay.get("shape", ())) != tuple(inputs.shape[1:]) or int(lay.get("in_bytes", -1)) != prog.in_bytes:
        raise BundleError(f"{path / 'inputs.npy'}: images of shape {inputs.shape[1:]} do not match the input layout "
                          f"{lay} / program in_bytes={prog.in_bytes}; re-export the bundle")
    if expected.shape != (inputs.shape[0], prog.n_out) or int(man.get("n_out", -1)) != prog.n_out:
        raise BundleError(f"{path / 'expected.npy'}: shape {expected.shape}, expected ({inputs.shape[0]}, {prog.n_out}); "
                          "re-export the bundle")
    return Bundle(path=path, manifest=man, hw=hw, program_beats=beats, dense_beats=dense, program=prog,
                  dense_program=progs[1], inputs=inputs, expected=expected, labels=labels)


def _check_derived(path: Path, beats: np.ndarray, prog: Program, hw: HwConfig) -> None:
    """The files derived from the program agree with it: ``program.hex`` is program.bin in
    hex, ``weight_store.hex`` the store it loads, and the inspection arrays match their
    metadata. A bundle whose files all match the manifest but not one another was
    assembled from two exports or edited."""
    fix = "the bundle mixes files of different exports or was edited: re-export it"
    p = path / "program.hex"
    try:
        words = [int(w, 16) for w in p.read_text().split()]
    except (ValueError, UnicodeDecodeError):
        raise BundleError(f"{p}: not one 64-bit hex word per line; {fix}") from None
    if words != [int(b) for b in beats]:
        raise BundleError(f"{p}: differs from program.bin; {fix}")
    p = path / "weight_store.hex"
    try:
        text = p.read_text()
    except UnicodeDecodeError:
        text = None
    if text != store_hex(prog, hw):
        raise BundleError(f"{p}: not the weight store program.bin loads; {fix}")
    p = path / "weights_metadata.json"
    try:
        meta = json.loads(p.read_text())
        segs = [seg for layer in meta["layers"] for seg in layer["channel_segments"]]
        total = sum(int(n) for _, n in segs)
        bounds_ok = all(0 <= int(o) and int(o) + int(n) <= total for o, n in segs)
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise BundleError(f"{p}: not the inspection metadata (layers / channel_segments); {fix}") from None
    if not bounds_ok:
        raise BundleError(f"{p}: a channel segment lies outside the weight arrays; {fix}")
    for name, size in (("weights_indices.bin", 2 * total), ("weights_values.bin", total)):
        q = path / name
        if q.stat().st_size != size:
            raise BundleError(f"{q}: {q.stat().st_size} bytes, weights_metadata.json describes {total} weights "
                              f"({size} bytes); {fix}")
    idx = np.frombuffer((path / "weights_indices.bin").read_bytes(), "<u2").astype(np.int64)
    val = np.frombuffer((path / "weights_values.bin").read_bytes(), np.int8)
    names = f"{path / 'weights_indices.bin'} / weights_values.bin"
    if len(meta["layers"]) != len(prog.layers):
        raise BundleError(f"{p}: {len(meta['layers'])} layers, program.bin has {len(prog.layers)}; {fix}")
    for li, (lm, lp) in enumerate(zip(meta["layers"], prog.layers)):
        if lp.desc.flags & (F_MAXRED | F_AVG):  # sparse pooling: window entries, no model weights
            continue
        shape = lm.get("shape") or []
        skip = lm.get("skip_mult")
        rows = _row_weights(lp)
        if len(lm["channel_segments"]) != len(rows) or (skip is not None and len(skip) != len(rows)):
            raise BundleError(f"{p}: layer {li} has {len(lm['channel_segments'])} channels, program.bin "
                              f"{len(rows)}; {fix}")
        for c, (seg, (ks, ws)) in enumerate(zip(lm["channel_segments"], rows)):
            o, n = int(seg[0]), int(seg[1])
            pos, is_skip = entry_positions(ks, lp.desc.tb, shape, skip is not None)
            if skip is not None:
                if not (np.count_nonzero(is_skip) == 1 and int(ws[is_skip][0]) == int(skip[c])):
                    raise BundleError(f"{names}: layer {li} channel {c}: the residual entry of program.bin differs "
                                      f"from skip_mult in weights_metadata.json; {fix}")
                pos, ws = pos[~is_skip], ws[~is_skip]
            order = np.argsort(pos, kind="stable")   # program order is index order only per virtual channel
            pos, ws = pos[order], ws[order]
            if n != pos.size or not (np.array_equal(idx[o:o + n], pos) and np.array_equal(val[o:o + n], ws)):
                raise BundleError(f"{names}: layer {li} channel {c} differs from the weights in program.bin; {fix}")


def entry_positions(ks: np.ndarray, tb: int, shape, skip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weight positions (c·K_h·K_w + ky·K_w + kx, or the FC input index) of a row's entry
    indices ``k`` (docs/hardware.md "Activation memory"), and which entries are the
    residual add's. The compiler's rule picks the index space: the tap table when the taps
    (and the residual entry) fit in 16, else one virtual channel per kernel row — ``ky``
    for a kernel on one input channel (depthwise), ``ky·C + c`` on an hcw input."""
    ks = np.asarray(ks, np.int64)
    if len(shape) != 4:
        return ks, np.zeros(ks.shape, bool)
    c_in, kh, kw = (int(s) for s in shape[1:])
    v, t = ks >> tb, ks & ((1 << tb) - 1)
    if kh * kw + int(skip) <= 16:
        return v * kh * kw + t, t == kh * kw
    if c_in == 1:
        return v * kw + t, np.zeros(ks.shape, bool)
    ky, c = v // c_in, v % c_in
    return c * kh * kw + ky * kw + t, t == kw


def _row_weights(lp) -> list:
    """(entry index k, weight) of every non-zero weight of each row of a layer program."""
    q = lp.desc.Q
    codes, wts = lp.codes.tolist(), lp.weights.tolist()
    rows, e = [], 0
    for ch in lp.channels:
        slots, k, ks, ws = ch.n_groups * q, 0, [], []
        s = 0
        while s < slots:
            c = codes[e]
            if c == GROUP_END:
                s += q - (s % q)
            else:
                k += c
                if wts[e]:
                    ks.append(k)
                    ws.append(wts[e])
                s += 1
            e += 1
        rows.append((np.array(ks, np.int64), np.array(ws, np.int8)))
    return rows


def _load_npy(p: Path, dtype, ndim: int) -> np.ndarray:
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - numpy raises many kinds for a bad file
        raise BundleError(f"{p}: not a readable .npy array ({e}); re-export the bundle") from None
    if arr.ndim != ndim or (dtype is not None and arr.dtype != dtype):
        raise BundleError(f"{p}: array {arr.dtype}{arr.shape}, expected {np.dtype(dtype) if dtype else ''} with "
                          f"{ndim} dims; re-export the bundle")
    return arr
