"""zeroskip.host: import, prune, quantise, compile and export models (needs torch).

``convert(model, calib)`` takes a user's ``nn.Module`` or ONNX file to an engine program
and a bundle (:mod:`.conversion`); ``zeroskip.host.zoo`` holds well-known tiny networks."""


def __getattr__(name):
    # lazy: ``import zeroskip.host.cli`` and friends stay light
    if name in ("convert", "Conversion"):
        import importlib
        _c = importlib.import_module("zeroskip.host.conversion")
        return getattr(_c, name)
    if name in ("UnsupportedModel", "CompileError"):
        from zeroskip.driver import errors
        return getattr(errors, name)
    raise AttributeError(f"module 'zeroskip.host' has no attribute {name!r}")


__all__ = ["CompileError", "Conversion", "UnsupportedModel", "convert"]
