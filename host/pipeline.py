"""End-to-end host pipeline: train → prune → fine-tune → quantise → integer reference.

Trained models are cached under ``$ZEROSKIP_CACHE/models`` (default
``~/.cache/zeroskip/models``) keyed by the configuration and the host sources, so a
warm ``zeroskip demo`` skips training; ``--no-cache`` retrains.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from zeroskip.driver import tools

from zeroskip.host.quant.qmodel import LayerKind, QInputReduce, QLayer, QModel, QSparsePool

HOST_DIR = Path(__file__).resolve().parent
# the sources a trained model depends on: the cache key hashes them
MODEL_SOURCES = ("data/datasets.py", "data/detector.py", "models/cnn.py", "models/sparse.py", "training/train.py",
                 "training/prune.py", "quant/quantize.py", "quant/graph_quant.py", "quant/qmodel.py",
                 "quant/quantize_sparse.py", "quant/reference.py", "ir/graph.py", "ir/evaluate.py",
                 "frontends/torch_fx.py")


def models_cache() -> Path:
    """Trained models: ``$ZEROSKIP_CACHE/models`` (default ``~/.cache/zeroskip/models``)."""
    return tools.cache_dir("models")


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "synthetic"
    sparsity: float = 0.70
    seed: int = 0
    epochs: int | None = None
    finetune_epochs: int | None = None
    model: str = "tiny"
    n_max: int = 20

    def key(self) -> str:
        src = b"".join((HOST_DIR / f).read_bytes() for f in MODEL_SOURCES)
        cfg = asdict(self)
        if self.model == "sparsepixels-dense":
            cfg["lr"] = DENSE_TWIN_LR
        h = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode() + src).hexdigest()[:16]
        return f"{self.dataset}-{self.model}-s{self.sparsity:.3f}-seed{self.seed}-{h}"


@dataclass
class Trained:
    config: TrainConfig
    qmodel: QModel
    x_test_int8: np.ndarray
    y_test: np.ndarray
    expected: np.ndarray  # int32 logits from the PyTorch integer reference
    accuracy_float: float
    accuracy_int8: float
    sparsity: float
    layer_sparsity: list
    seconds: dict = field(default_factory=dict)
    cached: bool = False


def save_qmodel(path: Path, q: QModel) -> None:
    arrays = {}
    layers = []
    for i, layer in enumerate(q.layers):
        if layer.kind is LayerKind.SPOOL:
            layers.append({"kind": "spool", "mode": layer.mode, "name": layer.name})
            continue
        for nm in ("weight", "bias", "mult", "shift"):
            arrays[f"l{i}_{nm}"] = getattr(layer, nm)
        if layer.skip_mult is not None:
            arrays[f"l{i}_skip_mult"] = np.asarray(layer.skip_mult, np.int64)
        layers.append({"kind": layer.kind, "padding": layer.padding, "relu": layer.relu, "pool": layer.pool,
                       "out_scale": layer.out_scale, "name": layer.name, "stride": list(layer.stride),
                       "pads": list(layer.pads), "groups": layer.groups, "src": layer.src, "skip": layer.skip})
    np.savez(path.with_suffix(".npz"), **arrays)
    red = {"threshold": q.reduce.threshold, "n_max": q.reduce.n_max} if q.reduce is not None else None
    path.with_suffix(".json").write_text(json.dumps({"input_shape": list(q.input_shape), "input_scale": q.input_scale,
                                                     "name": q.name, "layers": layers, "meta": q.meta,
                                                     "reduce": red}, default=str))


def load_qmodel(path: Path) -> QModel:
    meta = json.loads(path.with_suffix(".json").read_text())
    arr = np.load(path.with_suffix(".npz"))
    layers = tuple(QSparsePool(mode=lm["mode"], name=lm["name"]) if LayerKind(lm["kind"]) is LayerKind.SPOOL else
                   QLayer(kind=lm["kind"], weight=arr[f"l{i}_weight"], bias=arr[f"l{i}_bias"],
                          mult=arr[f"l{i}_mult"], shift=arr[f"l{i}_shift"], padding=lm["padding"], relu=lm["relu"],
                          pool=lm["pool"], out_scale=lm["out_scale"], name=lm["name"],
                          stride=tuple(lm.get("stride", (1, 1))), pads=lm.get("pads"), groups=lm.get("groups", 1),
                          src=lm.get("src"), skip=lm.get("skip"),
                          skip_mult=arr[f"l{i}_skip_mult"] if f"l{i}_skip_mult" in arr else None)
                   for i, lm in enumerate(meta["layers"]))
    red = meta.get("reduce")
    return QModel(input_shape=tuple(meta["input_shape"]), layers=layers, input_scale=meta["input_scale"],
                  name=meta["name"], meta=meta.get("meta", {}),
                  reduce=QInputReduce(**red) if red else None)


MODELS = ("tiny", "sparsepixels", "sparsepixels-dense")  # the last: the ordinary CNN of the same size
SPARSE_EPOCHS = 16
DENSE_TWIN_LR = 3e-3


def _spec_for(cfg: TrainConfig, data):
    from zeroskip.host.models.cnn import tiny_cnn_spec

    if cfg.model in ("sparsepixels", "sparsepixels-dense"):
        from zeroskip.host.models.sparse import dense_twin_spec, sparse_pixels_spec

        spec = sparse_pixels_spec(data.input_shape, data.n_classes, n_max=cfg.n_max)
        return dense_twin_spec(spec) if cfg.model == "sparsepixels-dense" else spec
    if cfg.model != "tiny":
        raise ValueError(f"unknown model {cfg.model!r}: choose one of {', '.join(MODELS)}")
    return tiny_cnn_spec(data.input_shape, data.n_classes)


def _build(cfg: TrainConfig, data):
    spec = _spec_for(cfg, data)
    if cfg.model == "sparsepixels":
        from zeroskip.host.models.sparse import build_sparse_model

        return build_sparse_model(spec, seed=cfg.seed)
    from zeroskip.host.models.cnn import build_model

    return build_model(spec, seed=cfg.seed)


def train_float(cfg: TrainConfig, data, *, quiet: bool = False):
    """Train the float model (no pruning). Returns (model, seconds)."""
    from zeroskip.host.training import train as T

    T.set_seed(cfg.seed)
    model = _build(cfg, data)
    default_epochs = SPARSE_EPOCHS if cfg.model.startswith("sparsepixels") else T.DEFAULT_EPOCHS
    t = time.perf_counter()
    # the dense twin over near-empty detector images stays at chance with the default
    # learning rate; it gets a larger one so the accuracy comparison is fair to it
    lr = DENSE_TWIN_LR if cfg.model == "sparsepixels-dense" else T.DEFAULT_LR
    T.train(model, data.x_train, data.y_train, epochs=cfg.epochs if cfg.epochs is not None else default_epochs,
            lr=lr, seed=cfg.seed, quiet=quiet, desc=f"train {cfg.dataset}")
    return model, time.perf_counter() - t


def prune_quantize(cfg: TrainConfig, model, data, *, quiet: bool = False) -> Trained:
    """Prune a trained float model (in place) to ``cfg.sparsity``, fine-tune with masks,
    make the zeros permanent, quantise, and evaluate float vs int8."""
    from zeroskip.host.training import prune as PR
    from zeroskip.host.training import train as T
    from zeroskip.host.quant.quantize import quantize, quantize_input
    from zeroskip.host.quant.reference import run_reference

    secs = {}
    t = time.perf_counter()
    if cfg.sparsity > 0:
        PR.prune_global(model, cfg.sparsity)
        ft = cfg.finetune_epochs if cfg.finetune_epochs is not None else T.DEFAULT_FINETUNE_EPOCHS
        if ft:
            PR.finetune(model, data.x_train, data.y_train, epochs=ft, seed=cfg.seed, quiet=quiet,
                        desc=f"finetune {cfg.sparsity:.2f}")
        PR.finalize(model)
    secs["prune_finetune"] = time.perf_counter() - t
    t = time.perf_counter()
    acc_f = T.evaluate(model, data.x_test, data.y_test)
    if cfg.model == "sparsepixels":
        from zeroskip.host.quant.quantize_sparse import quantize_sparse

        q = quantize_sparse(model, data.x_train, name=f"sparsepixels-{cfg.dataset}")
    else:  # through the layer graph, as an imported model goes (docs/ir.md)
        q = quantize(model, data.x_train, name=f"tinycnn-{cfg.dataset}")
    x_int8 = quantize_input(data.x_test, q.input_scale)
    expected = run_reference(q, x_int8).astype(np.int32)
    acc_q = float(np.mean(expected.argmax(axis=1) == data.y_test))
    secs["quantize_reference"] = time.perf_counter() - t
    return Trained(config=cfg, qmodel=q, x_test_int8=x_int8, y_test=np.asarray(data.y_test), expected=expected,
                   accuracy_float=float(acc_f), accuracy_int8=acc_q, sparsity=PR.weight_sparsity(model),
                   layer_sparsity=PR.layer_sparsity(model), seconds=secs)


def get_trained(cfg: TrainConfig, *, quiet: bool = False, use_cache: bool = True) -> Trained:
    """Train, prune and quantise per ``cfg`` (or load the cached result)."""
    from zeroskip.host.data.datasets import load_dataset

    cdir = models_cache() / cfg.key()
    if use_cache and (cdir / "done.json").is_file():
        try:
            info = json.loads((cdir / "done.json").read_text())
            z = np.load(cdir / "test.npz")
            return Trained(config=cfg, qmodel=load_qmodel(cdir / "qmodel"), x_test_int8=z["x"], y_test=z["y"],
                           expected=z["expected"], accuracy_float=info["accuracy_float"],
                           accuracy_int8=info["accuracy_int8"], sparsity=info["sparsity"],
                           layer_sparsity=info["layer_sparsity"], seconds=info["seconds"], cached=True)
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache entry is rebuilt below
    data = load_dataset(cfg.dataset, seed=cfg.seed)
    model, t_train = train_float(cfg, data, quiet=quiet)
    tr = prune_quantize(cfg, model, data, quiet=quiet)
    tr.seconds["train"] = t_train
    if use_cache:
        tmp = cdir.with_name(cdir.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        save_qmodel(tmp / "qmodel", tr.qmodel)
        np.savez(tmp / "test.npz", x=tr.x_test_int8, y=tr.y_test, expected=tr.expected)
        (tmp / "done.json").write_text(json.dumps({
            "accuracy_float": tr.accuracy_float, "accuracy_int8": tr.accuracy_int8, "sparsity": tr.sparsity,
            "layer_sparsity": tr.layer_sparsity, "seconds": tr.seconds}))
        if cdir.exists():
            import shutil
            shutil.rmtree(cdir, ignore_errors=True)
        os.replace(tmp, cdir)
    return tr
