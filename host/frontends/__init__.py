"""Frontends: translate a model from outside into the float layer graph
(:mod:`zeroskip.host.ir`). :func:`from_torch` takes an ``nn.Module`` through ``torch.fx``;
:func:`from_onnx` takes an ``.onnx`` file or an ``onnx.ModelProto``."""

from zeroskip.host.frontends.torch_fx import from_torch


def from_onnx(path_or_model, input_shape=None, name=None):
    """Translate an ONNX model into a float layer graph (:mod:`.onnx_import`; imported on
    first use, so ``onnx`` is needed only by who uses it)."""
    from zeroskip.host.frontends.onnx_import import from_onnx as _from_onnx

    return _from_onnx(path_or_model, input_shape, name)


__all__ = ["from_onnx", "from_torch"]
