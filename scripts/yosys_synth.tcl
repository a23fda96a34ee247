# Yosys script of zeroskip.core's synth target (edalize's yosys_template option).
# edalize writes edalize_yosys_procs.tcl with the core's files, include directories and
# parameters; this script reads them and runs the synthesis flow of scripts/yosys_synth.ys
# (copied as zs_synth.ys: synth_xilinx on the hierarchy with the small helper modules
# flattened into their parents, then the flattened design's cell counts in zs_stat.json
# for host/bench/resources.py), then writes the EDIF netlist.
yosys -import
source edalize_yosys_procs.tcl
load_plugins
yosys -import

verilog_defaults -push
verilog_defaults -add -defer
set_defines
set_incdirs
read_files
set_params
verilog_defaults -pop

yosys script zs_synth.ys
write_edif -pvector bra $name.edif
