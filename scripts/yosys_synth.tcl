# Yosys script of zeroskip.core's synth target (edalize's yosys_template option).
# edalize writes edalize_yosys_procs.tcl with the core's files, include directories and
# parameters. This script runs synth_xilinx on them (hierarchically: about 2.5x faster
# than with -flatten, for ~5% more LUTs), flattens the mapped netlist, records its cell
# counts in zs_stat.json (host/bench/resources.py reads it; Yosys 0.23 writes invalid JSON for a
# hierarchical design) and writes the EDIF netlist.
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

synth $top

flatten
tee -q -o zs_stat.json stat -json
stat -tech xilinx
write_edif -pvector bra $name.edif
