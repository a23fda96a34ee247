"""Pieces the benches share: the build table (:mod:`.builds`), the cocotb testbench of
``zeroskip_top`` (:mod:`.zstb`) and its RTL-versus-golden checker (:mod:`.checker`),
networks, programs and images (:mod:`.programs`), cycle-level stream drivers
(:mod:`.zsstress`) and networks at the capacity limits (:mod:`.limitnets`)."""
