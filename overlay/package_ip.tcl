# package_ip.tcl: package the zeroskip RTL as a Vivado IP (component.xml).
#
#   vivado -mode batch -source package_ip.tcl -tclargs SRC_DIR IP_REPO CONTRACT_JSON PART
#
# SRC_DIR        the RTL (*.v, *.sv) and its include files (*.vh); zeroskip.core copies
#                them into the work root's ip_src/
# IP_REPO        IP repository to write; the IP lands in IP_REPO/<name>_<version>/
# CONTRACT_JSON  driver/contract.json: the IP's VLNV (vendor:library:name:version) is read
#                from its "ip" object, the same string the pynq driver binds to
# PART           FPGA part of the packaging project (xc7z020clg400-1)
#
# The top module zeroskip_top's ports are named so that Vivado infers the interfaces:
# s_axi_ctrl_* (AXI4-Lite slave), s_axis_* / m_axis_* (AXI4-Stream), aclk (clock),
# aresetn (active-low reset), interrupt (level-high interrupt). This script checks that
# each was inferred, ties them to aclk, gives the register interface a memory map, and
# restricts the parameters to their legal values. Its HDL parameters (LANES, W_SLOTS, ...)
# become IP parameters, set per instance by pynq_z2_bd.tcl.
#
# Written for Vivado 2022.2 to 2024.1 (see docs/build.md).

source [file join [file dirname [file normalize [info script]]] zs_common.tcl]

# Run a cosmetic packaging step; report instead of failing if this Vivado lacks it.
proc zs_try {what script} {
    if {[catch {uplevel 1 $script} err]} {
        puts "WARNING: \[zeroskip\] $what skipped: $err"
    }
}

# The bus parameter NAME of bus interface BUSIF set to VALUE (created if missing).
proc zs_bus_param {core busif name value} {
    set bi [ipx::get_bus_interfaces $busif -of_objects $core]
    set p [ipx::get_bus_parameters $name -of_objects $bi]
    if {$p eq ""} {
        set p [ipx::add_bus_parameter $name $bi]
    }
    set_property value $value $p
}

proc zs_package_ip {src_dir ip_repo contract part} {
    set ip [zs_contract_ip $contract]
    set vendor [dict get $ip vendor]
    set library [dict get $ip library]
    set name [dict get $ip name]
    set version [dict get $ip version]
    set vlnv "$vendor:$library:$name:$version"
    set top zeroskip_top

    set sources [lsort [glob -nocomplain -directory $src_dir *.v *.sv]]
    set headers [lsort [glob -nocomplain -directory $src_dir *.vh *.svh]]
    if {[llength $sources] == 0} {
        error "no Verilog sources in $src_dir: run 'fusesoc run --setup --target pynq_z2' first"
    }

    # The IP directory holds its own copy of the RTL, so it is self-contained.
    set root [file normalize [file join $ip_repo "${name}_[string map {. _} $version]"]]
    file delete -force $root
    file mkdir [file join $root hdl]
    set local {}
    foreach f [concat $headers $sources] {
        file copy -force $f [file join $root hdl]
        lappend local [file join $root hdl [file tail $f]]
    }

    set proj_dir [file normalize "${ip_repo}_project"]
    create_project -force zs_ip_package $proj_dir -part $part
    add_files -norecurse $local
    foreach h $headers {
        set_property file_type {Verilog Header} [get_files [file join $root hdl [file tail $h]]]
    }
    set_property include_dirs [list [file join $root hdl]] [current_fileset]
    set_property top $top [current_fileset]
    update_compile_order -fileset sources_1

    ipx::package_project -root_dir $root -vendor $vendor -library $library \
        -taxonomy /UserIP -set_current true -force
    set core [ipx::current_core]
    set_property vendor $vendor $core
    set_property library $library $core
    set_property name $name $core
    set_property version $version $core
    set_property display_name "zeroskip sparse int8 CNN engine" $core
    set_property description "Runtime-programmable sparse int8 CNN engine: AXI4-Lite control, 64-bit AXI4-Stream program/image in and results out" $core
    set_property vendor_display_name "zeroskip" $core

    # Interfaces: inferred from the port names; infer explicitly where packaging did not.
    foreach {busif kind abstraction} {
        s_axi_ctrl bus    xilinx.com:interface:aximm_rtl:1.0
        s_axis     bus    xilinx.com:interface:axis_rtl:1.0
        m_axis     bus    xilinx.com:interface:axis_rtl:1.0
        aclk       signal xilinx.com:signal:clock_rtl:1.0
        aresetn    signal xilinx.com:signal:reset_rtl:1.0
        interrupt  signal xilinx.com:signal:interrupt_rtl:1.0
    } {
        if {[ipx::get_bus_interfaces $busif -of_objects $core] eq ""} {
            if {$kind eq "bus"} {
                ipx::infer_bus_interfaces $abstraction $core
            } else {
                ipx::infer_bus_interface $busif $abstraction $core
            }
        }
        if {[ipx::get_bus_interfaces $busif -of_objects $core] eq ""} {
            error "bus interface $busif of $top was not inferred: check the port names of $top"
        }
    }
    foreach busif {s_axi_ctrl s_axis m_axis} {
        if {[catch {ipx::associate_bus_interfaces -busif $busif -clock aclk $core} err]} {
            puts "INFO: \[zeroskip\] $busif already associated with aclk ($err)"
        }
    }
    zs_bus_param $core aclk ASSOCIATED_BUSIF s_axi_ctrl:s_axis:m_axis
    zs_bus_param $core aclk ASSOCIATED_RESET aresetn
    zs_bus_param $core aresetn POLARITY ACTIVE_LOW
    zs_bus_param $core interrupt SENSITIVITY LEVEL_HIGH

    # Register space of the AXI4-Lite slave: one 4 KiB block (the map uses 64 bytes).
    set mm [ipx::get_memory_maps s_axi_ctrl -of_objects $core]
    if {$mm eq ""} {
        set mm [ipx::add_memory_map s_axi_ctrl $core]
        set_property slave_memory_map_ref s_axi_ctrl \
            [ipx::get_bus_interfaces s_axi_ctrl -of_objects $core]
    }
    set ab [ipx::get_address_blocks -of_objects $mm]
    if {$ab eq ""} {
        set ab [ipx::add_address_block reg0 $mm]
    }
    set ab [lindex $ab 0]
    set_property base_address 0 $ab
    set_property range 4096 $ab
    set_property width 32 $ab
    zs_try "address block usage" { set_property usage register $ab }

    # Legal parameter values, shown as drop-downs in the IP customisation dialog.
    foreach {param values} [list LANES [zs_contract_int_list $contract lanes_choices] FAULT_INJECT {0 1}] {
        set up [ipx::get_user_parameters $param -of_objects $core]
        if {$up ne ""} {
            zs_try "value list of $param" {
                set_property value_validation_type list $up
                set_property value_validation_list $values $up
            }
        }
    }

    ipx::create_xgui_files $core
    ipx::update_checksums $core
    ipx::check_integrity $core
    ipx::save_core $core
    set packaged [join [list [get_property vendor $core] [get_property library $core] \
                            [get_property name $core] [get_property version $core]] ":"]
    if {$packaged ne $vlnv} {
        error "packaged IP has VLNV $packaged, the contract says $vlnv"
    }
    puts "INFO: \[zeroskip\] packaged $vlnv in $root"
    close_project
    return $root
}

if {![info exists ::zs_no_main] && [info exists ::argv] && [llength $::argv] >= 4} {
    lassign $::argv zs_src zs_repo zs_contract zs_part
    zs_package_ip $zs_src $zs_repo $zs_contract $zs_part
}
