"""Post-training int8 quantisation of the project's sparse-pixel
:class:`~zeroskip.host.models.sparse.SparseCNN`: the module goes through the layer graph
(:func:`~zeroskip.host.frontends.from_torch`, whose input reduce makes the maps ``sites``
tensors) and the one graph quantiser, as every other model does. The scheme, sparse-pixel
part included (the int8 reduce threshold, calibration on the active sites, sparse pooling
keeping its input's scale), is that of :mod:`zeroskip.host.quant.graph_quant`.

``meta["reduce_agreement"]`` is the fraction of calibration images whose int8 site list
equals the float one (1.0 on the detector set, whose inputs are all representable).
"""

from __future__ import annotations

from dataclasses import replace

from zeroskip.host.models.sparse import SparseCNN
from zeroskip.host.quant.graph_quant import quantize_graph, threshold_to_int8
from zeroskip.host.quant.qmodel import QModel
from zeroskip.host.quant.quantize import DEFAULT_N_CALIB, calibration_batch
from zeroskip.host.training.train import DEFAULT_THREADS, torch_threads

__all__ = ["quantize_sparse", "threshold_to_int8"]


def quantize_sparse(model: SparseCNN, calib_x, *, n_calib: int = DEFAULT_N_CALIB, act_percentile: float = 100.0,
                    input_scale: float | None = None, name: str | None = None) -> QModel:
    """Quantise a :class:`~zeroskip.host.models.sparse.SparseCNN` to a sparse-pixel
    :class:`QModel` using the first ``n_calib`` images of ``calib_x``: per conv block an
    ``sconv`` layer then a ``QSparsePool`` if it pools, then the ``fc`` layers, and the
    model's ``QInputReduce``. ``input_scale`` overrides the calibrated input scale. Pruning
    masks may still be attached (the effective weights are used)."""
    spec = getattr(model, "spec", None)
    if not isinstance(model, SparseCNN) or spec is None:
        raise TypeError(f"quantize_sparse needs a SparseCNN (sparse.build_sparse_model), got {type(model).__name__}")
    x, s_in = calibration_batch(calib_x, n_calib, spec.input_shape, act_percentile, input_scale)
    from zeroskip.host.frontends import from_torch
    from zeroskip.host.ir import run_passes

    was_training = model.training
    try:
        graph = run_passes(from_torch(model.eval(), tuple(spec.input_shape), name=name or "sparse_model"))
    finally:
        model.train(was_training)
    with torch_threads(DEFAULT_THREADS):
        q = quantize_graph(graph, x.numpy(), n_calib=n_calib, act_percentile=act_percentile, input_scale=s_in,
                           name=name or "sparse_model")
    names = model.qlayer_names()
    if len(names) != len(q.layers):
        raise RuntimeError(f"{len(q.layers)} quantised layers for the model's {len(names)}: {names}")
    layers = tuple(replace(layer, name=n) for layer, n in zip(q.layers, names))
    return QModel(input_shape=q.input_shape, layers=layers, input_scale=q.input_scale, name=q.name,
                  meta={**q.meta, "spec": spec.to_dict()}, reduce=q.reduce)
