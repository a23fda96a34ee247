"""Frontends: translate a model from outside into the float layer graph
(:mod:`zeroskip.host.ir`). :func:`from_torch` takes an ``nn.Module`` through ``torch.fx``."""

from zeroskip.host.frontends.torch_fx import from_torch

__all__ = ["from_torch"]
