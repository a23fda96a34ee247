# vivado_standin.tcl: a stand-in for the Vivado Tcl commands that zeroskip's overlay
# scripts call (project, IP packaging, block design), for tests/test_fusesoc.py.
#
# It models what the scripts can get wrong, so that a mistake fails here as it would in
# Vivado: block-design cells know their real interface pins, net pins, parameters (with
# their real defaults) and address spaces/segments, by the names Vivado gives them
# (processing_system7 5.5, axi_dma 7.1 per PG021, axi_interconnect 2.1, proc_sys_reset
# 5.0, xlconcat 2.1, axi_intc 4.1, and the packaged zeroskip IP). Ports that exist only
# with a parameter set (PS7 HP0, DMA channels, interconnect slots, concat inputs) appear
# only then. An unknown command, cell, pin, parameter or address segment is an error.
# Every call that matters is printed as a tab-separated record starting with '@'.
#
# Usage: tclsh vivado_standin.tcl WORK SCRIPT [ARGS...]; the environment supplies
#   ZS_STANDIN_PS7_PARAMS  file with the PS7's parameter names (one a line)
#   ZS_STANDIN_ZS_PARAMS   the zeroskip IP's parameters, "NAME DEFAULT ..."
#   ZS_STANDIN_ZS_VLNV     the zeroskip IP's VLNV
#   ZS_STANDIN_VERSION     what `version -short` answers (default 2023.2)

proc rec {args} { puts "@\t[join $args \t]" }
proc fail {msg} { error "vivado stand-in: $msg" }

# ------------------------------------------------------------------ option parsing
proc strip_opts {argl {with_value {}}} {
    set out {}
    for {set i 0} {$i < [llength $argl]} {incr i} {
        set a [lindex $argl $i]
        if {[string index $a 0] eq "-" && ![string is double -strict $a]} {
            if {[lsearch -exact $with_value $a] >= 0} { incr i }
            continue
        }
        lappend out $a
    }
    return $out
}
proc opt {argl name {default ""}} {
    set i [lsearch -exact $argl $name]
    if {$i < 0} { return $default }
    return [lindex $argl [expr {$i + 1}]]
}

# ------------------------------------------------------------------ the IP catalog
set ::versions {processing_system7 5.5 proc_sys_reset 5.0 axi_dma 7.1 axi_interconnect 2.1
                xlconcat 2.1 axi_intc 4.1}

# PS7: real parameter names from the PYNQ-Z2 board designs; the defaults below are the
# IP's for the parameters whose value changes the ports.
set ::ps7_defaults {
    PCW_USE_M_AXI_GP0 1 PCW_USE_S_AXI_HP0 0 PCW_S_AXI_HP0_DATA_WIDTH 64 PCW_EN_CLK0_PORT 1
    PCW_EN_RST0_PORT 1 PCW_USE_FABRIC_INTERRUPT 0 PCW_IRQ_F2P_INTR 0 PCW_FPGA0_PERIPHERAL_FREQMHZ 50
}
proc ps7_params {} {
    set d [dict create]
    set fh [open $::env(ZS_STANDIN_PS7_PARAMS)]
    foreach line [split [read $fh] "\n"] {
        set line [string trim $line]
        if {$line eq "" || [string index $line 0] eq "#"} { continue }
        dict set d $line ""
    }
    close $fh
    return [dict merge $d $::ps7_defaults]
}

# PG021 (AXI DMA 7.1) parameter names and defaults
set ::dma_defaults {
    c_include_sg 1 c_sg_length_width 14 c_sg_include_stscntrl_strm 1 c_micro_dma 0
    c_include_mm2s 1 c_include_s2mm 1 c_addr_width 32 c_m_axi_mm2s_data_width 32
    c_m_axis_mm2s_tdata_width 32 c_m_axi_s2mm_data_width 32 c_s_axis_s2mm_tdata_width 32
    c_mm2s_burst_size 16 c_s2mm_burst_size 16 c_include_mm2s_dre 0 c_include_s2mm_dre 0
    c_enable_multi_channel 0 c_increase_throughput 0
}
set ::ic_defaults {NUM_SI 1 NUM_MI 2 STRATEGY 0 ENABLE_ADVANCED_OPTIONS 0}
set ::rst_defaults {C_EXT_RESET_HIGH 1 C_AUX_RESET_HIGH 1 C_NUM_BUS_RST 1 C_NUM_INTERCONNECT_ARESETN 1
                    C_NUM_PERP_ARESETN 1 C_NUM_PERP_RST 1}
set ::concat_defaults {NUM_PORTS 2 IN0_WIDTH 1 IN1_WIDTH 1 IN2_WIDTH 1 IN3_WIDTH 1 dout_width 2}
set ::intc_defaults {C_IRQ_CONNECTION 0 C_KIND_OF_INTR 0xFFFFFFFF C_IRQ_IS_LEVEL 1 C_NUM_INTR_INPUTS 1
                     C_HAS_FAST 0 C_ASYNC_INTR 0xFFFFFFFF}

proc catalog_name {vlnv} {
    if {$vlnv eq $::env(ZS_STANDIN_ZS_VLNV)} { return zeroskip }
    if {![regexp {^xilinx\.com:ip:([a-z_0-9]+):([0-9.]+)$} $vlnv -> name ver]} {
        fail "IP $vlnv is not in the catalog"
    }
    if {![dict exists $::versions $name] || [dict get $::versions $name] ne $ver} {
        fail "IP $vlnv is not in the catalog"
    }
    return $name
}

proc ip_defaults {ip} {
    switch -- $ip {
        processing_system7 { return [ps7_params] }
        axi_dma { return $::dma_defaults }
        axi_interconnect { return $::ic_defaults }
        proc_sys_reset { return $::rst_defaults }
        xlconcat { return $::concat_defaults }
        axi_intc { return $::intc_defaults }
        zeroskip { return $::env(ZS_STANDIN_ZS_PARAMS) }
    }
}

# The cell's pins for its current parameters: dict with keys intf (interface pins), net
# (net pins), spaces (master address spaces), segs (slave interface -> segment).
proc cell_pins {cell} {
    set ip [dict get $::cells $cell ip]
    set p [dict get $::cells $cell params]
    set intf {}; set net {}; set spaces {}; set segs {}
    switch -- $ip {
        processing_system7 {
            lappend intf DDR FIXED_IO
            if {[dict get $p PCW_USE_M_AXI_GP0]} { lappend intf M_AXI_GP0; lappend net M_AXI_GP0_ACLK; lappend spaces Data }
            if {[dict get $p PCW_USE_S_AXI_HP0]} {
                lappend intf S_AXI_HP0; lappend net S_AXI_HP0_ACLK
                dict set segs S_AXI_HP0 {HP0_DDR_LOWOCM}
            }
            if {[dict get $p PCW_EN_CLK0_PORT]} { lappend net FCLK_CLK0 }
            if {[dict get $p PCW_EN_RST0_PORT]} { lappend net FCLK_RESET0_N }
            if {[dict get $p PCW_USE_FABRIC_INTERRUPT] && [dict get $p PCW_IRQ_F2P_INTR]} { lappend net IRQ_F2P }
        }
        axi_dma {
            lappend intf S_AXI_LITE; lappend net s_axi_lite_aclk axi_resetn
            dict set segs S_AXI_LITE {Reg}
            if {[dict get $p c_include_sg]} { lappend intf M_AXI_SG; lappend net m_axi_sg_aclk; lappend spaces Data_SG }
            if {[dict get $p c_include_mm2s]} {
                lappend intf M_AXI_MM2S M_AXIS_MM2S; lappend net m_axi_mm2s_aclk mm2s_introut mm2s_prmry_reset_out_n
                lappend spaces Data_MM2S
            }
            if {[dict get $p c_include_s2mm]} {
                lappend intf M_AXI_S2MM S_AXIS_S2MM; lappend net m_axi_s2mm_aclk s2mm_introut s2mm_prmry_reset_out_n
                lappend spaces Data_S2MM
            }
        }
        axi_interconnect {
            lappend net ACLK ARESETN
            for {set i 0} {$i < [dict get $p NUM_SI]} {incr i} {
                set s [format S%02d $i]; lappend intf ${s}_AXI; lappend net ${s}_ACLK ${s}_ARESETN
            }
            for {set i 0} {$i < [dict get $p NUM_MI]} {incr i} {
                set m [format M%02d $i]; lappend intf ${m}_AXI; lappend net ${m}_ACLK ${m}_ARESETN
            }
        }
        proc_sys_reset {
            lappend net slowest_sync_clk ext_reset_in aux_reset_in mb_debug_sys_rst dcm_locked mb_reset \
                bus_struct_reset peripheral_reset interconnect_aresetn peripheral_aresetn
        }
        xlconcat {
            for {set i 0} {$i < [dict get $p NUM_PORTS]} {incr i} { lappend net In$i }
            lappend net dout
        }
        axi_intc {
            lappend intf s_axi interrupt; lappend net s_axi_aclk s_axi_aresetn intr irq
            dict set segs s_axi {S_AXI/Reg}
        }
        zeroskip {
            lappend intf s_axi_ctrl s_axis m_axis; lappend net aclk aresetn interrupt
            dict set segs s_axi_ctrl {s_axi_ctrl/reg0}
        }
    }
    return [dict create intf $intf net $net spaces $spaces segs $segs]
}

# All address segments of the design: full path -> slave interface pin.
proc all_segs {} {
    set out [dict create]
    dict for {cell info} $::cells {
        if {[dict get $info ip] eq "port"} { continue }
        dict for {pin segl} [dict get [cell_pins $cell] segs] {
            foreach s $segl {
                if {[string first / $s] < 0} { set s $pin/$s }
                dict set out $cell/$s $cell/$pin
            }
        }
    }
    return $out
}

# ------------------------------------------------------------------ objects and properties
set ::cells [dict create]
array set ::P {}

proc cell_of {path} {
    set cell [lindex [split $path /] 0]
    if {![dict exists $::cells $cell]} { fail "no block design cell '$cell' (in $path)" }
    return $cell
}
proc pin_check {path kind} {
    set cell [cell_of $path]
    if {[dict get $::cells $cell ip] eq "port"} {
        if {$path ne $cell} { fail "port $cell has no pin [lrange [split $path /] 1 end]" }
        return $path
    }
    set pin [join [lrange [split $path /] 1 end] /]
    set have [dict get [cell_pins $cell] $kind]
    if {[lsearch -exact $have $pin] < 0} {
        set ip [dict get $::cells $cell ip]
        fail "$ip cell $cell has no [expr {$kind eq {intf} ? {interface pin} : {pin}}] '$pin' with its current\
              parameters (it has: [lsort $have])"
    }
    return $path
}

proc canonical_param {cell key} {
    set params [dict get $::cells $cell params]
    foreach k [dict keys $params] {
        if {[string equal -nocase $k $key]} { return $k }
    }
    fail "[dict get $::cells $cell ip] cell $cell has no parameter CONFIG.$key"
}

proc set_property {args} {
    if {[lindex $args 0] eq "-dict"} {
        set kv [lindex $args 1]
        set objs [lrange $args 2 end]
    } else {
        set kv [list [lindex $args 0] [lindex $args 1]]
        set objs [lrange $args 2 end]
    }
    foreach obj [join $objs] {
        foreach {k v} $kv {
            if {[string match CONFIG.* $k] && [dict exists $::cells $obj]} {
                set name [canonical_param $obj [string range $k 7 end]]
                dict set ::cells $obj params $name $v
                rec PROP $obj CONFIG.$name $v
            } else {
                set ::P($obj|$k) $v
                rec PROP $obj $k $v
            }
        }
    }
}
proc get_property {name obj} {
    if {[string match CONFIG.* $name] && [dict exists $::cells $obj]} {
        set key [canonical_param $obj [string range $name 7 end]]
        return [dict get $::cells $obj params $key]
    }
    if {[info exists ::P($obj|$name)]} { return $::P($obj|$name) }
    if {$name eq "DIRECTORY"} { return [pwd] }
    fail "get_property $name of $obj: no such property set"
}

# ------------------------------------------------------------------ project commands
proc version {args} {
    if {[info exists ::env(ZS_STANDIN_VERSION)]} { return $::env(ZS_STANDIN_VERSION) }
    return 2023.2
}
proc create_project {args} { rec CREATE_PROJECT [lindex [strip_opts $args {-part}] 0] [opt $args -part] }
proc current_project {args} { return project }
proc current_fileset {args} { return sources_1 }
proc get_filesets {args} { return [lindex $args end] }
proc get_runs {args} { return [lindex $args end] }
proc get_files {args} { return [strip_opts $args {-of_objects -filter}] }
proc add_files {args} { foreach f [join [strip_opts $args {-fileset}]] { rec ADD_FILE $f } }
proc update_compile_order {args} {}
proc close_project {args} { rec CLOSE_PROJECT }
proc update_ip_catalog {args} { rec UPDATE_IP_CATALOG }
proc get_ipdefs {args} {
    set filter [opt $args -filter]
    if {$filter ne ""} {
        regexp {xilinx.com:ip:([a-z_0-9]+):} $filter -> name
        if {[dict exists $::versions $name]} { return [list xilinx.com:ip:$name:[dict get $::versions $name]] }
        return ""
    }
    set v [lindex [strip_opts $args] 0]
    if {$v eq $::env(ZS_STANDIN_ZS_VLNV)} { return $v }
    return ""
}
namespace eval common {}
proc common::send_gid_msg {args} { rec MSG [opt $args -severity] [lindex $args end] }

# ------------------------------------------------------------------ IP packaging
namespace eval ipx {}
set ::busifs {}
proc ipx::package_project {args} {
    rec PACKAGE [opt $args -root_dir] [opt $args -vendor] [opt $args -library]
    array set ::P [list core0|name zeroskip_top core0|version 1.0 \
        core0|vendor [opt $args -vendor] core0|library [opt $args -library]]
    # Vivado infers the interfaces whose ports follow the AXI naming and the clock/reset
    set ::busifs {s_axi_ctrl s_axis m_axis aclk aresetn}
}
proc ipx::current_core {} { return core0 }
proc ipx::get_bus_interfaces {args} {
    set name [lindex [strip_opts $args {-of_objects}] 0]
    if {$name in $::busifs} { return "busif:$name" }
    return ""
}
proc ipx::infer_bus_interfaces {args} { rec INFER {*}$args }
proc ipx::infer_bus_interface {args} {
    rec INFER {*}$args
    set port [lindex $args 0]
    if {$port ni {interrupt aclk aresetn}} { fail "ipx::infer_bus_interface: no port $port on zeroskip_top" }
    if {$port ni $::busifs} { lappend ::busifs $port }
}
proc ipx::associate_bus_interfaces {args} {
    set b [opt $args -busif]
    if {$b ni $::busifs} { fail "ipx::associate_bus_interfaces: no bus interface $b" }
    rec ASSOCIATE $b [opt $args -clock]
}
proc ipx::get_bus_parameters {args} { return "" }
proc ipx::add_bus_parameter {name bi} { return "$bi.$name" }
proc ipx::get_memory_maps {args} { return "" }
proc ipx::add_memory_map {name core} { return "mm:$name" }
proc ipx::get_address_blocks {args} { return "" }
proc ipx::add_address_block {name mm} { rec ADDRESS_BLOCK $mm $name; return "$mm/$name" }
proc ipx::get_user_parameters {args} { return "up:[lindex [strip_opts $args {-of_objects}] 0]" }
proc ipx::create_xgui_files {core} {}
proc ipx::update_checksums {core} {}
proc ipx::check_integrity {core} {}
proc ipx::save_core {core} {
    rec SAVE_CORE [join [list $::P(core0|vendor) $::P(core0|library) $::P(core0|name) $::P(core0|version)] :]
}

# ------------------------------------------------------------------ block design
proc create_bd_design {name} { rec BD_DESIGN $name }
proc current_bd_design {args} {}
proc create_bd_cell {args} {
    set name [lindex [strip_opts $args {-type -vlnv}] 0]
    set vlnv [opt $args -vlnv]
    set ip [catalog_name $vlnv]
    if {[dict exists $::cells $name]} { fail "cell $name exists already" }
    dict set ::cells $name [dict create ip $ip params [ip_defaults $ip]]
    rec CELL $name $vlnv
    return $name
}
proc create_bd_intf_port {args} {
    set name [lindex [strip_opts $args {-mode -vlnv}] 0]
    dict set ::cells $name [dict create ip port params {}]
    rec PORT $name [opt $args -vlnv]
    return $name
}
proc get_bd_cells {args} { set c [lindex $args end]; cell_of $c; return $c }
proc get_bd_pins {p} { return [pin_check $p net] }
proc get_bd_intf_pins {p} { return [pin_check $p intf] }
proc connect_bd_net {args} {
    set pins [strip_opts $args {-net}]
    if {[llength $pins] < 2} { fail "connect_bd_net needs two pins or more: $pins" }
    foreach p $pins { pin_check $p net }
    rec NET {*}$pins
}
proc connect_bd_intf_net {args} {
    set pins [strip_opts $args {-intf_net}]
    if {[llength $pins] != 2} { fail "connect_bd_intf_net needs two interface pins: $pins" }
    foreach p $pins { pin_check $p intf }
    rec INTF {*}$pins
}
proc get_bd_addr_spaces {p} {
    set cell [cell_of $p]
    set space [join [lrange [split $p /] 1 end] /]
    if {[lsearch -exact [dict get [cell_pins $cell] spaces] $space] < 0} {
        fail "[dict get $::cells $cell ip] cell $cell has no address space '$space'"
    }
    return $p
}
proc get_bd_addr_segs {args} {
    set quiet [expr {[lsearch -exact $args -quiet] >= 0}]
    set of [opt $args -of_objects]
    set segs [all_segs]
    set out {}
    if {$of ne ""} {
        foreach intf $of {
            dict for {seg pin} $segs { if {$pin eq $intf} { lappend out $seg } }
        }
    } else {
        set pattern [lindex [strip_opts $args {-of_objects}] 0]
        dict for {seg pin} $segs { if {[string match $pattern $seg]} { lappend out $seg } }
    }
    if {$out eq "" && !$quiet} {
        fail "no address segment matches '[expr {$of ne {} ? "-of_objects $of" : [lindex [strip_opts $args {-of_objects}] 0]}]'"
    }
    return $out
}
proc assign_bd_address {args} {
    if {[llength $args] == 0} { rec ADDR_AUTO; return }
    set segs [strip_opts $args {-offset -range -target_address_space -with_name}]
    foreach seg [join $segs] {
        if {![dict exists [all_segs] $seg]} { fail "assign_bd_address: no address segment '$seg'" }
        rec ADDR [opt $args -offset] [opt $args -range] [opt $args -target_address_space] $seg
    }
}
proc validate_bd_design {args} { rec VALIDATE }
proc save_bd_design {args} {}
proc generate_target {args} { rec GENERATE {*}$args }
proc make_wrapper {args} { return "[file rootname [opt $args -files]]_wrapper.v" }

lassign $argv work script
set ::argv [lrange $argv 2 end]
cd $work
source $script
rec DONE
