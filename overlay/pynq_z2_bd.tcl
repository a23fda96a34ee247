# pynq_z2_bd.tcl: the PYNQ-Z2 block design around the zeroskip IP.
#
# Sourced by the Vivado project script that edalize writes for zeroskip.core's pynq_z2
# target (working directory: the work root). Expects the IP packaged by package_ip.tcl in
# ip_repo/ (the target's pre-build hook) and contract.json next to this script.
#
#   processing_system7_0   PYNQ-Z2 PS: DDR3 and MIO as on the board, FCLK_CLK0 = 100 MHz,
#                          M_AXI_GP0 (control), S_AXI_HP0 64-bit (DMA), IRQ_F2P
#   rst_ps7_0_100M         proc_sys_reset on FCLK_CLK0 / FCLK_RESET0_N
#   ps7_0_axi_periph       AXI interconnect GP0 -> zeroskip_0, axi_dma_0, axi_intc_0
#   axi_dma_0              simple mode (no scatter-gather), 64-bit memory map and streams
#   zeroskip_0             our IP (VLNV from contract.json), parameters from the target
#   axi_mem_intercon       AXI interconnect DMA MM2S + S2MM -> S_AXI_HP0
#   xlconcat_0, axi_intc_0 interrupts -> IRQ_F2P (pynq finds interrupts through an axi_intc)
#
# Address map (GP0):  zeroskip_0 0x43C0_0000, axi_dma_0 0x4040_0000, axi_intc_0 0x4180_0000
# (64 KiB each); the DMA sees the 512 MiB of DDR at 0.
#
# The engine parameters come from the project's fileset generic property, which edalize
# sets from the core's parameters (--LANES=16 ...); they are moved onto zeroskip_0.
#
# Written for Vivado 2022.2 to 2024.1 (see docs/build.md); another version gets a warning.
#
# Timing gate: impl_1 runs zs_check_timing.tcl before write_bitstream, which stops the run
# when the routed design has negative setup or hold slack (no bitstream is written).

source [file join [file dirname [file normalize [info script]]] zs_common.tcl]

set zs_bd_name zeroskip_bd
set zs_ip_repo [file normalize ip_repo]
set zs_contract [file join [file dirname [file normalize [info script]]] contract.json]
set zs_timing_hook [file join [file dirname [file normalize [info script]]] zs_check_timing.tcl]
set zs_vivado_versions {2022.2 2023.1 2023.2 2024.1}

set zs_vivado [version -short]
if {[lsearch -exact $zs_vivado_versions [lindex [split $zs_vivado _] 0]] < 0} {
    puts "WARNING: \[zeroskip\] this block design was written for Vivado [join $zs_vivado_versions {, }];\
          this is Vivado $zs_vivado. It may work (the IPs are picked by name, newest version); if the\
          build fails, use one of those versions (docs/build.md, \"Other Vivado versions\")."
}

# Newest version of a Xilinx catalog IP, e.g. xilinx.com:ip:axi_dma:7.1.
proc zs_ipdef {name} {
    set defs [get_ipdefs -all -filter "VLNV =~ xilinx.com:ip:${name}:*"]
    if {[llength $defs] == 0} {
        error "IP xilinx.com:ip:$name is not in this Vivado's catalog"
    }
    return [lindex [lsort -dictionary $defs] end]
}

# Set CONFIG parameters of a cell; then check that Vivado kept the values of the keys
# in CHECK (some IPs adjust dependent parameters silently).
proc zs_config {cell settings {check {}}} {
    set dict {}
    foreach {key value} $settings {
        lappend dict CONFIG.$key $value
    }
    set_property -dict $dict $cell
    foreach key $check {
        set want [dict get $settings $key]
        set got [get_property CONFIG.$key $cell]
        if {[string is double -strict $got] && [string is double -strict $want]} {
            set same [expr {$got == $want}]
        } else {
            set same [expr {$got eq $want}]
        }
        if {!$same} {
            error "$cell: CONFIG.$key is $got after setting $want"
        }
    }
}

# Address segments of a slave interface pin ("cell/pin"). By the pin object, not by a
# path glob: a segment's path need not repeat the pin's name (axi_intc's pin s_axi has
# the segment S_AXI/Reg).
proc zs_slave_segs {pin} {
    set segs [get_bd_addr_segs -quiet -of_objects [get_bd_intf_pins $pin]]
    if {$segs eq ""} {
        error "no address segment behind $pin"
    }
    return $segs
}

# Connect one net to pins given as "cell/pin".
proc zs_net {args} {
    set pins {}
    foreach p $args {
        lappend pins [get_bd_pins $p]
    }
    connect_bd_net {*}$pins
}

# Zynq-7020 PS as on the PYNQ-Z2 (the board's preset, so the .hwh matches the PS the
# PYNQ image configures), plus the fabric ports this design uses.
proc zs_ps7_settings {} {
    return {
        PCW_CRYSTAL_PERIPHERAL_FREQMHZ {50}
        PCW_APU_PERIPHERAL_FREQMHZ {650}
        PCW_PRESET_BANK0_VOLTAGE {LVCMOS 3.3V}
        PCW_PRESET_BANK1_VOLTAGE {LVCMOS 1.8V}
        PCW_UIPARAM_DDR_MEMORY_TYPE {DDR 3}
        PCW_UIPARAM_DDR_PARTNO {MT41J256M16 RE-125}
        PCW_UIPARAM_DDR_BUS_WIDTH {16 Bit}
        PCW_UIPARAM_DDR_FREQ_MHZ {525}
        PCW_UIPARAM_DDR_TRAIN_WRITE_LEVEL {1}
        PCW_UIPARAM_DDR_TRAIN_READ_GATE {1}
        PCW_UIPARAM_DDR_TRAIN_DATA_EYE {1}
        PCW_UIPARAM_DDR_BOARD_DELAY0 {0.223}
        PCW_UIPARAM_DDR_BOARD_DELAY1 {0.212}
        PCW_UIPARAM_DDR_BOARD_DELAY2 {0.085}
        PCW_UIPARAM_DDR_BOARD_DELAY3 {0.092}
        PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_0 {0.040}
        PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_1 {0.058}
        PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_2 {-0.009}
        PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_3 {-0.033}
        PCW_QSPI_PERIPHERAL_ENABLE {1}
        PCW_QSPI_GRP_SINGLE_SS_ENABLE {1}
        PCW_QSPI_GRP_FBCLK_ENABLE {1}
        PCW_ENET0_PERIPHERAL_ENABLE {1}
        PCW_ENET0_ENET0_IO {MIO 16 .. 27}
        PCW_ENET0_GRP_MDIO_ENABLE {1}
        PCW_ENET0_RESET_ENABLE {1}
        PCW_ENET0_RESET_IO {MIO 9}
        PCW_SD0_PERIPHERAL_ENABLE {1}
        PCW_SD0_GRP_CD_ENABLE {1}
        PCW_SD0_GRP_CD_IO {MIO 47}
        PCW_SDIO_PERIPHERAL_FREQMHZ {50}
        PCW_UART0_PERIPHERAL_ENABLE {1}
        PCW_UART0_UART0_IO {MIO 14 .. 15}
        PCW_UART_PERIPHERAL_FREQMHZ {100}
        PCW_USB0_PERIPHERAL_ENABLE {1}
        PCW_USB0_RESET_ENABLE {1}
        PCW_USB0_RESET_IO {MIO 46}
        PCW_GPIO_MIO_GPIO_ENABLE {1}
        PCW_FPGA0_PERIPHERAL_FREQMHZ {100}
        PCW_EN_CLK0_PORT {1}
        PCW_EN_RST0_PORT {1}
        PCW_USE_M_AXI_GP0 {1}
        PCW_USE_S_AXI_HP0 {1}
        PCW_S_AXI_HP0_DATA_WIDTH {64}
        PCW_USE_FABRIC_INTERRUPT {1}
        PCW_IRQ_F2P_INTR {1}
    }
}

proc zs_build_bd {bd_name ip_repo contract} {
    set vlnv [zs_contract_vlnv $contract]

    # Engine parameters: the target's values over the contract defaults. They configure
    # the IP instance; the fileset generic is cleared because the top is the BD wrapper.
    set generics [get_property generic [get_filesets sources_1]]
    set params [zs_params_from_generics $generics [zs_contract_defaults $contract]]
    set_property generic {} [get_filesets sources_1]
    set length_width [zs_dma_length_width $params [zs_contract_ints $contract program]]

    set_property ip_repo_paths [list $ip_repo] [current_project]
    update_ip_catalog -rebuild
    if {[llength [get_ipdefs -all $vlnv]] == 0} {
        error "IP $vlnv not found in $ip_repo: the package_ip pre-build step did not run or failed (see package_ip.log)"
    }

    create_bd_design $bd_name
    current_bd_design $bd_name

    # Processing system
    set ps [create_bd_cell -type ip -vlnv [zs_ipdef processing_system7] processing_system7_0]
    zs_config $ps [zs_ps7_settings] {PCW_FPGA0_PERIPHERAL_FREQMHZ PCW_USE_M_AXI_GP0
        PCW_USE_S_AXI_HP0 PCW_S_AXI_HP0_DATA_WIDTH PCW_USE_FABRIC_INTERRUPT PCW_IRQ_F2P_INTR}
    set ddr [create_bd_intf_port -mode Master -vlnv xilinx.com:interface:ddrx_rtl:1.0 DDR]
    set fixed_io [create_bd_intf_port -mode Master \
        -vlnv xilinx.com:display_processing_system7:fixedio_rtl:1.0 FIXED_IO]
    connect_bd_intf_net $ddr [get_bd_intf_pins processing_system7_0/DDR]
    connect_bd_intf_net $fixed_io [get_bd_intf_pins processing_system7_0/FIXED_IO]

    # Reset
    set rst [create_bd_cell -type ip -vlnv [zs_ipdef proc_sys_reset] rst_ps7_0_100M]
    zs_config $rst {C_EXT_RESET_HIGH 0}

    # DMA: simple mode, 64-bit memory map and streams, widest length register
    set dma [create_bd_cell -type ip -vlnv [zs_ipdef axi_dma] axi_dma_0]
    zs_config $dma [list \
        c_include_sg 0 \
        c_sg_include_stscntrl_strm 0 \
        c_micro_dma 0 \
        c_include_mm2s 1 \
        c_include_s2mm 1 \
        c_addr_width 32 \
        c_sg_length_width $length_width \
        c_m_axi_mm2s_data_width 64 \
        c_m_axis_mm2s_tdata_width 64 \
        c_m_axi_s2mm_data_width 64 \
        c_s_axis_s2mm_tdata_width 64 \
        c_mm2s_burst_size 16 \
        c_s2mm_burst_size 16 \
        c_include_mm2s_dre 0 \
        c_include_s2mm_dre 0] \
        {c_include_sg c_include_mm2s c_include_s2mm c_sg_length_width c_m_axi_mm2s_data_width
         c_m_axis_mm2s_tdata_width c_m_axi_s2mm_data_width c_s_axis_s2mm_tdata_width}

    # The engine
    set zs [create_bd_cell -type ip -vlnv $vlnv zeroskip_0]
    set zs_settings [zs_params_from_generics $generics {}]
    if {[dict size $zs_settings]} {
        zs_config $zs $zs_settings [dict keys $zs_settings]
    }
    puts "INFO: \[zeroskip\] zeroskip_0 ($vlnv) parameters: $params; DMA length width $length_width bits"

    # Interconnects
    set periph [create_bd_cell -type ip -vlnv [zs_ipdef axi_interconnect] ps7_0_axi_periph]
    zs_config $periph {NUM_SI 1 NUM_MI 3} {NUM_MI}
    set memic [create_bd_cell -type ip -vlnv [zs_ipdef axi_interconnect] axi_mem_intercon]
    zs_config $memic {NUM_SI 2 NUM_MI 1} {NUM_SI}

    # Interrupts
    set concat [create_bd_cell -type ip -vlnv [zs_ipdef xlconcat] xlconcat_0]
    zs_config $concat {NUM_PORTS 3} {NUM_PORTS}
    set intc [create_bd_cell -type ip -vlnv [zs_ipdef axi_intc] axi_intc_0]
    zs_config $intc {C_IRQ_CONNECTION 1}

    # AXI connections
    connect_bd_intf_net [get_bd_intf_pins processing_system7_0/M_AXI_GP0] \
                        [get_bd_intf_pins ps7_0_axi_periph/S00_AXI]
    connect_bd_intf_net [get_bd_intf_pins ps7_0_axi_periph/M00_AXI] \
                        [get_bd_intf_pins zeroskip_0/s_axi_ctrl]
    connect_bd_intf_net [get_bd_intf_pins ps7_0_axi_periph/M01_AXI] \
                        [get_bd_intf_pins axi_dma_0/S_AXI_LITE]
    connect_bd_intf_net [get_bd_intf_pins ps7_0_axi_periph/M02_AXI] \
                        [get_bd_intf_pins axi_intc_0/s_axi]
    connect_bd_intf_net [get_bd_intf_pins axi_dma_0/M_AXI_MM2S] \
                        [get_bd_intf_pins axi_mem_intercon/S00_AXI]
    connect_bd_intf_net [get_bd_intf_pins axi_dma_0/M_AXI_S2MM] \
                        [get_bd_intf_pins axi_mem_intercon/S01_AXI]
    connect_bd_intf_net [get_bd_intf_pins axi_mem_intercon/M00_AXI] \
                        [get_bd_intf_pins processing_system7_0/S_AXI_HP0]
    connect_bd_intf_net [get_bd_intf_pins axi_dma_0/M_AXIS_MM2S] \
                        [get_bd_intf_pins zeroskip_0/s_axis]
    connect_bd_intf_net [get_bd_intf_pins zeroskip_0/m_axis] \
                        [get_bd_intf_pins axi_dma_0/S_AXIS_S2MM]

    # One clock (FCLK_CLK0, 100 MHz) for everything
    zs_net processing_system7_0/FCLK_CLK0 \
        processing_system7_0/M_AXI_GP0_ACLK processing_system7_0/S_AXI_HP0_ACLK \
        rst_ps7_0_100M/slowest_sync_clk \
        ps7_0_axi_periph/ACLK ps7_0_axi_periph/S00_ACLK ps7_0_axi_periph/M00_ACLK \
        ps7_0_axi_periph/M01_ACLK ps7_0_axi_periph/M02_ACLK \
        axi_mem_intercon/ACLK axi_mem_intercon/S00_ACLK axi_mem_intercon/S01_ACLK \
        axi_mem_intercon/M00_ACLK \
        axi_dma_0/s_axi_lite_aclk axi_dma_0/m_axi_mm2s_aclk axi_dma_0/m_axi_s2mm_aclk \
        zeroskip_0/aclk axi_intc_0/s_axi_aclk

    # Resets
    zs_net processing_system7_0/FCLK_RESET0_N rst_ps7_0_100M/ext_reset_in
    zs_net rst_ps7_0_100M/interconnect_aresetn \
        ps7_0_axi_periph/ARESETN axi_mem_intercon/ARESETN
    zs_net rst_ps7_0_100M/peripheral_aresetn \
        ps7_0_axi_periph/S00_ARESETN ps7_0_axi_periph/M00_ARESETN \
        ps7_0_axi_periph/M01_ARESETN ps7_0_axi_periph/M02_ARESETN \
        axi_mem_intercon/S00_ARESETN axi_mem_intercon/S01_ARESETN \
        axi_mem_intercon/M00_ARESETN \
        axi_dma_0/axi_resetn zeroskip_0/aresetn axi_intc_0/s_axi_aresetn

    # Interrupts: DMA MM2S, DMA S2MM, engine -> concat -> axi_intc -> IRQ_F2P
    zs_net axi_dma_0/mm2s_introut xlconcat_0/In0
    zs_net axi_dma_0/s2mm_introut xlconcat_0/In1
    zs_net zeroskip_0/interrupt xlconcat_0/In2
    zs_net xlconcat_0/dout axi_intc_0/intr
    zs_net axi_intc_0/irq processing_system7_0/IRQ_F2P

    # Address map
    set gp0 [get_bd_addr_spaces processing_system7_0/Data]
    foreach {pin offset} {
        zeroskip_0/s_axi_ctrl  0x43C00000
        axi_dma_0/S_AXI_LITE   0x40400000
        axi_intc_0/s_axi       0x41800000
    } {
        assign_bd_address -offset $offset -range 0x00010000 -target_address_space $gp0 \
            [zs_slave_segs $pin] -force
    }
    set ddr_seg [get_bd_addr_segs processing_system7_0/S_AXI_HP0/HP0_DDR_LOWOCM]
    foreach space {axi_dma_0/Data_MM2S axi_dma_0/Data_S2MM} {
        assign_bd_address -offset 0x00000000 -range 0x20000000 \
            -target_address_space [get_bd_addr_spaces $space] $ddr_seg -force
    }
    assign_bd_address

    validate_bd_design
    save_bd_design

    # Output products (this writes hw_handoff/zeroskip_bd.hwh) and the HDL wrapper, which
    # the target names as the top level.
    set bd_file [get_files ${bd_name}.bd]
    set_property synth_checkpoint_mode None $bd_file
    generate_target all $bd_file
    set wrapper [make_wrapper -files $bd_file -top]
    if {$wrapper eq ""} {
        set dir [get_property DIRECTORY [current_project]]
        set wrapper [lindex [glob -nocomplain \
            $dir/*.gen/sources_1/bd/$bd_name/hdl/${bd_name}_wrapper.v \
            $dir/*.srcs/sources_1/bd/$bd_name/hdl/${bd_name}_wrapper.v] 0]
    }
    add_files -norecurse $wrapper
    set_property top ${bd_name}_wrapper [current_fileset]
    update_compile_order -fileset sources_1
    return $bd_file
}

zs_build_bd $zs_bd_name $zs_ip_repo $zs_contract

# The timing gate: checked in the routed design, before the bitstream is written.
file delete -force timing_ok.txt
set_property STEPS.WRITE_BITSTREAM.TCL.PRE $zs_timing_hook [get_runs impl_1]
