"""The compiler: quantised model → engine program (:mod:`.lowering`: memory plan, tiling, run-length coding) and the bundle on disk (:mod:`.export`)."""

from .lowering import CompileError, InputLayout, compile_model, input_layout, plan_regions, weight_bytes

__all__ = ["CompileError", "InputLayout", "compile_model", "input_layout", "plan_regions", "weight_bytes"]
