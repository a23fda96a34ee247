"""Bring your own model: ``convert`` a PyTorch module or an ONNX file into an engine
program and a bundle the driver runs (``zeroskip.driver.Model(bundle).predict(x)``).

    conv = convert(model, calib)             # nn.Module, or a path to .onnx / .pt2
    print(conv.report())                     # per layer: shape, params, non-zero, MACs, cycles, scale
    conv.export("bundle_dir", test_inputs=x) # expected outputs from the integer reference

The path: frontend (``torch.fx`` or ONNX) → float layer graph → the float passes
(Dropout/Identity dropped, zero padding merged, BatchNorm folded, activations and pools
fused) → an import check (the graph reproduces the source model in float) → optional
global L1 pruning → calibration and int8 quantisation (:mod:`.quant.graph_quant`) →
compilation for the overlay (:mod:`.compiler`). Nothing here special-cases a model.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from zeroskip.driver import contract as C
from zeroskip.driver.errors import CompileError, UnsupportedModel
from zeroskip.driver.golden import image_timing
from zeroskip.driver.predict import apply_head
from zeroskip.driver.program import HwConfig, Program

from zeroskip.host.compiler import compile_model
from zeroskip.host.ir.evaluate import evaluate
from zeroskip.host.ir.graph import Graph
from zeroskip.host.ir.passes import run_passes
from zeroskip.host.ir.passes.prune import prune_global_l1
from zeroskip.host.quant.graph_quant import quantize_graph
from zeroskip.host.quant.qmodel import LayerKind, QModel
from zeroskip.host.quant.quantize import quantize_input
from zeroskip.host.quant.reference import run_reference

CLOCK_MHZ = 100.0
IMPORT_RTOL = 1e-4      # the float graph must reproduce the source model to this (relative to max|y|)
IMPORT_CHECK_N = 32     # calibration inputs used for the import check


def _np_float(x, what: str) -> np.ndarray:
    try:
        import torch
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a host dependency
        pass
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{what} must be a numeric array, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return a


def load_model(spec: str, weights: str | None = None):
    """A model named on the command line: ``file.onnx``, ``file.pt2`` or
    ``package.module:factory`` (a callable returning an ``nn.Module``; ``weights``: a
    ``state_dict`` file to load into it)."""
    p = Path(spec)
    if p.suffix.lower() in (".onnx", ".pt2"):
        if not p.is_file():
            raise FileNotFoundError(f"{spec}: no such model file")
        if weights:
            raise ValueError("--weights applies to package.module:factory models, not to model files")
        return p
    if ":" not in spec:
        raise ValueError(f"{spec!r}: give a .onnx or .pt2 file or package.module:factory")
    mod_name, fn_name = spec.split(":", 1)
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise ValueError(f"{spec}: cannot import {mod_name!r} ({e}); is it on PYTHONPATH?") from None
    fn = getattr(mod, fn_name, None)
    if fn is None or not callable(fn):
        raise ValueError(f"{spec}: {mod_name} has no callable {fn_name!r}")
    model = fn()
    if weights:
        import torch
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model


def _source_outputs(model, x: np.ndarray) -> np.ndarray | None:
    """The source model's float outputs on ``x`` (for the import check)."""
    if isinstance(model, (str, Path)):
        p = Path(model)
        if p.suffix.lower() == ".onnx":
            import onnxruntime as ort
            sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            return np.asarray(sess.run(None, {name: x.astype(np.float32)})[0], np.float64)
        return None
    import torch
    with torch.no_grad():
        y = model(torch.as_tensor(x, dtype=torch.float32))
    return y.double().numpy()


def _import(model, input_shape: tuple, name: str | None) -> tuple[Graph, object]:
    """(float graph, the object to compare against)."""
    if isinstance(model, (str, Path)):
        p = Path(model)
        if p.suffix.lower() == ".onnx":
            from zeroskip.host.frontends import from_onnx
            return from_onnx(p, input_shape=input_shape, name=name or p.stem), p
        if p.suffix.lower() == ".pt2":
            # an exported program is a graph of aten ops: it goes through ONNX
            import tempfile

            import torch
            ep = torch.export.load(str(p))
            ex = getattr(ep, "example_inputs", None)
            example = ex[0][0] if ex and ex[0] else torch.zeros(1, *input_shape)
            if tuple(example.shape[1:]) != tuple(input_shape):
                raise ValueError(f"{p}: exported for inputs {tuple(example.shape)}, the calibration data is "
                                 f"(N, *{tuple(input_shape)})")
            from zeroskip.host.frontends import from_onnx
            with tempfile.TemporaryDirectory() as tmp:
                onnx_path = Path(tmp) / f"{p.stem}.onnx"
                torch.onnx.export(ep, (torch.zeros_like(example),), str(onnx_path), dynamo=True)
                graph = from_onnx(onnx_path, input_shape=input_shape, name=name or p.stem)
            return graph, _FixedBatch(ep.module(), int(example.shape[0]))
        raise ValueError(f"{model}: model files must be .onnx or .pt2")
    import torch
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"convert takes an nn.Module or a path to .onnx / .pt2, got {type(model).__name__}")
    module = copy.deepcopy(model).eval()
    from zeroskip.host.frontends import from_torch
    return from_torch(module, input_shape, name=name or type(model).__name__), module


class _FixedBatch:
    """An exported program traced for a fixed batch size, callable on any batch (padded
    chunks): the import check's view of a ``.pt2`` model."""

    def __init__(self, module, batch: int):
        self.module, self.batch = module, batch

    def __call__(self, x):
        import torch
        outs = []
        for i in range(0, x.shape[0], self.batch):
            chunk = x[i:i + self.batch]
            n = chunk.shape[0]
            if n < self.batch:
                chunk = torch.cat([chunk, chunk[-1:].expand(self.batch - n, *chunk.shape[1:])])
            outs.append(self.module(chunk)[:n])
        return torch.cat(outs)


@dataclass
class Conversion:
    """The result of :func:`convert`: the float graph, the quantised model, the program
    for ``hw`` (``None`` with ``fit_error`` when it does not fit) and the import check."""

    graph: Graph
    qmodel: QModel
    hw: HwConfig
    program: Program | None
    fit_error: str | None
    import_rel_error: float | None
    input_shape: tuple
    sparsity: float | None
    meta: dict = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return self.program is not None

    @property
    def head(self) -> str | None:
        return self.graph.meta.get("head")

    @property
    def output_scale(self) -> float:
        return float(self.qmodel.layers[-1].out_scale)

    # -- figures --------------------------------------------------------------------
    def layers(self) -> list[dict]:
        """Per engine layer: name, kind, output shape, params, non-zero weights, dense and
        non-zero MACs, predicted cycles (when the model fits) and output scale."""
        outs = self.qmodel.out_shapes()
        timing = image_timing(self.program)["layers"] if self.program is not None else None
        rows = []
        for i, layer in enumerate(self.qmodel.layers):
            w = layer.weight
            shp = outs[i]
            if layer.kind is LayerKind.CONV:
                pix = int(np.prod(shp[1:])) * (4 if layer.pool else 1)
                kind = ("depthwise " if layer.depthwise else "") + f"conv {layer.kernel[0]}x{layer.kernel[1]}"
                if layer.stride != (1, 1):
                    kind += f" /{layer.stride[0]}x{layer.stride[1]}"
                if layer.skip is not None:
                    kind += " +add"
                if layer.pool:
                    kind += " +pool"
            else:
                pix, kind = 1, "linear"
            nnz = int(np.count_nonzero(w))
            pool = self.qmodel.meta.get("pool_layers", {}).get(i)
            if pool is not None:   # a pooling layer: its weights of ones are not the model's
                kind = {"avg": f"avg pool {layer.kernel[0]}x{layer.kernel[1]}", "global_avg": "global avg pool"}[pool]
                rows.append({"name": layer.name, "kind": kind, "out_shape": list(shp), "params": 0, "nonzero": 0,
                             "macs_dense": int(w.size) * pix, "macs_sparse": nnz * pix,
                             "cycles": None if timing is None else int(timing[i].total),
                             "scale": float(layer.out_scale)})
                continue
            rows.append({"name": layer.name, "kind": kind, "out_shape": list(shp), "params": int(w.size),
                         "nonzero": nnz, "macs_dense": int(w.size) * pix, "macs_sparse": nnz * pix,
                         "cycles": None if timing is None else int(timing[i].total),
                         "scale": float(layer.out_scale)})
        return rows

    def cycles(self) -> int | None:
        """Predicted cycles per inference (the exact golden model), input and output included."""
        return None if self.program is None else int(image_timing(self.program)["total"])

    def latency_us(self, clock_mhz: float = CLOCK_MHZ) -> float | None:
        c = self.cycles()
        return None if c is None else c / clock_mhz

    def report(self, clock_mhz: float = CLOCK_MHZ) -> str:
        """The per-layer table, the fit against the overlay's capacities and the predicted
        latency."""
        rows = self.layers()
        head = f"{'layer':<22} {'kind':<26} {'output':<14} {'params':>8} {'nonzero':>8} {'MACs':>10} " \
               f"{'cycles':>8} {'scale':>10}"
        lines = [f"model {self.qmodel.name}: input {tuple(self.input_shape)}, {len(rows)} engine layers, "
                 f"LANES={self.hw.lanes}", head, "-" * len(head)]
        for r in rows:
            lines.append(f"{r['name'][:22]:<22} {r['kind'][:26]:<26} {'x'.join(map(str, r['out_shape'])):<14} "
                         f"{r['params']:>8} {r['nonzero']:>8} {r['macs_sparse']:>10} "
                         f"{'-' if r['cycles'] is None else r['cycles']:>8} {r['scale']:>10.4g}")
        p = sum(r["params"] for r in rows)
        nz = sum(r["nonzero"] for r in rows)
        lines.append(f"total: {p} params, {nz} non-zero ({1 - nz / max(p, 1):.1%} zeros), "
                     f"{sum(r['macs_sparse'] for r in rows)} of {sum(r['macs_dense'] for r in rows)} MACs")
        if self.import_rel_error is not None:
            lines.append(f"import check: float graph vs source model, max error {self.import_rel_error:.2e} of max|y|")
        lines.append("fit: " + self.fit_text())
        if self.program is not None:
            c = self.cycles()
            lines.append(f"predicted: {c} cycles per inference = {c / clock_mhz:.1f} us at {clock_mhz:.0f} MHz")
        return "\n".join(lines)

    def fit_text(self) -> str:
        if self.program is None:
            return f"does not fit the overlay ({self.fit_error})"
        p, hw = self.program, self.hw
        return (f"fits: {len(p.layers)}/{hw.max_layers} layers, {p.slots_used()}/{hw.w_slots} weight slots, "
                f"{p.n_channels}/{hw.ch_cap} channel records, {p.n_out}/{hw.out_cap} outputs, "
                f"activations 2^{p.act_log2}/{hw.act_bytes} bytes")

    # -- running on the host ----------------------------------------------------------
    def _grid(self, x: np.ndarray) -> np.ndarray:
        x = _np_float(x, "inputs")
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            if tuple(x.shape) == tuple(self.input_shape):
                x = x[None]
            else:
                raise ValueError(f"inputs of shape {tuple(x.shape)}; the model takes (N, *{tuple(self.input_shape)})")
        return x

    def quantize_inputs(self, x) -> np.ndarray:
        """Float inputs (N, *input shape) → the engine's int8 images (N, C, H, W)."""
        x = self._grid(x)
        return quantize_input(x.reshape(x.shape[0], *self.qmodel.input_shape), self.qmodel.input_scale)

    def predict_int(self, x) -> np.ndarray:
        """int32 outputs of the integer reference (what every backend returns)."""
        return run_reference(self.qmodel, self.quantize_inputs(x))

    def predict(self, x) -> np.ndarray:
        """Dequantised outputs of the integer reference, the trailing Softmax applied."""
        return apply_head(self.predict_int(x) * self.output_scale, self.head)

    def predict_float(self, x) -> np.ndarray:
        """The float graph's outputs (before quantisation), the trailing Softmax applied."""
        return apply_head(np.asarray(evaluate(self.graph, self._grid(x))), self.head)

    def agreement(self, x) -> dict:
        """int8 against float on ``x``: argmax agreement and relative L2 error of the
        outputs (before the trailing Softmax)."""
        x = self._grid(x)
        yf = np.asarray(evaluate(self.graph, x), np.float64)
        yq = self.predict_int(x) * self.output_scale
        rel = float(np.linalg.norm(yq - yf) / max(np.linalg.norm(yf), 1e-30))
        return {"n": int(x.shape[0]), "argmax_agreement": float(np.mean(yq.argmax(1) == yf.argmax(1))),
                "rel_l2": rel}

    # -- bundle --------------------------------------------------------------------------
    def export(self, out_dir, test_inputs=None, labels=None) -> Path:
        """Write the bundle (atomically: a failed export leaves nothing behind). Its test
        inputs are ``test_inputs`` (float, default: 16 calibration inputs) with expected
        outputs from the integer reference."""
        if self.program is None:
            raise CompileError(f"{self.qmodel.name} does not fit the overlay: {self.fit_error}")
        from zeroskip.host.compiler.export import export_bundle
        x = self.meta["calib_sample"] if test_inputs is None else test_inputs
        xi = self.quantize_inputs(x)
        expected = run_reference(self.qmodel, xi)
        info = {"source": self.meta.get("source"), "sparsity": self.sparsity,
                "import_rel_error": self.import_rel_error}
        return export_bundle(out_dir, self.qmodel, self.hw, xi, expected, labels=labels, info=info,
                             input_shape=tuple(self.input_shape))


def convert(model, calib, *, sparsity: float | None = None, lanes: int = 8, hw: HwConfig | None = None,
            name: str | None = None, n_calib: int = 512, act_percentile: float = 100.0) -> Conversion:
    """Convert ``model`` (an ``nn.Module``, or a path to an ``.onnx`` / ``.pt2`` file)
    calibrated on ``calib`` (float, N×C×H×W or N×F) into a :class:`Conversion`.

    ``sparsity``: prune globally by magnitude to this fraction of zeros first (default:
    keep the model's own zeros). ``lanes`` / ``hw``: the overlay to compile for. Raises
    :class:`UnsupportedModel` for layers the engine cannot run; a model that does not fit
    the overlay converts with ``fits == False`` and the capacity in ``fit_error``."""
    hw = hw or HwConfig(lanes=lanes)
    x = _np_float(calib, "calibration data")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"calibration data must be (N, C, H, W) or (N, F) with N >= 1, got shape {x.shape}")
    input_shape = tuple(int(s) for s in x.shape[1:])
    if len(input_shape) not in (1, 3):
        raise ValueError(f"calibration data must be (N, C, H, W) or (N, F), got shape {x.shape}")
    graph, source = _import(model, input_shape, name)
    graph = run_passes(graph)
    # the import check: the float graph reproduces the source model
    xs = x[:IMPORT_CHECK_N]
    rel = None
    y_src = _source_outputs(source, xs)
    if y_src is not None:
        y_ir = np.asarray(evaluate(graph, xs), np.float64)
        if graph.meta.get("head"):   # the source's output has its trailing Softmax applied
            y_ir = apply_head(y_ir, graph.meta["head"])
        if y_ir.shape != y_src.shape:
            raise UnsupportedModel(f"{graph.name}: the imported graph outputs {y_ir.shape}, the model {y_src.shape}")
        rel = float(np.abs(y_ir - y_src).max() / max(float(np.abs(y_src).max()), 1e-30))
        if rel > 1e3 * IMPORT_RTOL:
            raise UnsupportedModel(f"{graph.name}: the imported graph does not reproduce the model (max error "
                                   f"{rel:.2e} of max|y|): an op the frontend mistranslated; please report it")
    if sparsity is not None:
        graph = prune_global_l1(graph, float(sparsity))
    qmodel = quantize_graph(graph, x, n_calib=n_calib, act_percentile=act_percentile, name=name or graph.name)
    try:
        program = compile_model(qmodel, hw)
        fit_error = None
    except CompileError as e:
        program, fit_error = None, str(e)
    src = str(model) if isinstance(model, (str, Path)) else type(model).__name__
    return Conversion(graph=graph, qmodel=qmodel, hw=hw, program=program, fit_error=fit_error,
                      import_rel_error=rel, input_shape=input_shape, sparsity=sparsity,
                      meta={"source": src, "calib_sample": x[:16], "format_version": C.FORMAT_VERSION})
