"""Pieces the benches share: the build table (:mod:`.builds`), the cocotb testbench of
``zeroskip_top`` (:mod:`.zstb`), cycle-level stream drivers (:mod:`.zsstress`) and
networks at the capacity limits (:mod:`.limitnets`)."""
