# zs_check_timing.tcl: pre-bitstream hook of the pynq_z2 target's implementation run.
#
# pynq_z2_bd.tcl registers this file as impl_1's STEPS.WRITE_BITSTREAM.TCL.PRE, so it runs
# in the routed design right before write_bitstream. A design that misses setup or hold
# timing (worst slack < 0) stops the run here: no bitstream is written, the Vivado run
# fails and with it `fusesoc run --target pynq_z2`. On success it writes timing_ok.txt
# (the slacks) next to this file, in the work root; overlay/copy_outputs.py ships no
# bitstream without it.

set zs_marker [file join [file dirname [file normalize [info script]]] timing_ok.txt]
file delete -force $zs_marker

proc zs_worst_slack {kind} {
    set paths [get_timing_paths -max_paths 1 -nworst 1 -$kind]
    if {[llength $paths] == 0} {
        error "zeroskip: no $kind timing path in the routed design: are the clocks constrained?"
    }
    return [get_property SLACK [lindex $paths 0]]
}

set zs_wns [zs_worst_slack setup]
set zs_whs [zs_worst_slack hold]
if {$zs_wns < 0 || $zs_whs < 0} {
    error "zeroskip: the routed design misses timing (worst setup slack $zs_wns ns, worst hold slack\
           $zs_whs ns): no bitstream is written. See the timing summary report of impl_1; build with fewer\
           LANES or a lower clock."
}
puts "INFO: \[zeroskip\] timing met: worst setup slack $zs_wns ns, worst hold slack $zs_whs ns"
set zs_fh [open $zs_marker w]
puts $zs_fh "WNS $zs_wns\nWHS $zs_whs"
close $zs_fh
