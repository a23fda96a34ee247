// zeroskip_top.v: top level of the zeroskip engine with Xilinx interface
// naming, so that Vivado IP packaging infers
//   s_axi_ctrl  AXI4-Lite slave, 32-bit (registers, driver/contract.json)
//   s_axis      AXI4-Stream slave, 64-bit (program / images)
//   m_axis      AXI4-Stream master, 64-bit (ACK / results / error beats)
//   interrupt   level, active high
// on aclk (100 MHz on PYNQ-Z2) with the active-low synchronous aresetn.

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zeroskip_top #
(
    // MAC lanes: 4, 8, 16 or 32
    parameter LANES        = 8,
    // Activation memory bytes (power of two, 16*LANES..65536)
    parameter ACT_BYTES    = 65536,
    // Weight-store entries (multiple of LANES)
    parameter W_SLOTS      = 65536,
    // Channel records (output channels summed over all layers)
    parameter CH_CAP       = 2048,
    // int32 output values per image
    parameter OUT_CAP      = 1024,
    // Layer descriptors
    parameter MAX_LAYERS   = 32,
    // 1 builds the test-only FAULT register
    parameter FAULT_INJECT = 0,
    // Entries per site list of sparse-pixel mode (power of two up to 128; 0: none)
    parameter SITE_CAP     = 64,
    // AXI4-Lite address width
    parameter C_S_AXI_CTRL_ADDR_WIDTH = 8
)
(
    (* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 aclk CLK" *)
    (* X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF s_axi_ctrl:s_axis:m_axis, ASSOCIATED_RESET aresetn, FREQ_HZ 100000000" *)
    input  wire                               aclk,
    (* X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 aresetn RST" *)
    (* X_INTERFACE_PARAMETER = "POLARITY ACTIVE_LOW" *)
    input  wire                               aresetn,

    /*
     * AXI4-Lite control slave
     */
    input  wire [C_S_AXI_CTRL_ADDR_WIDTH-1:0] s_axi_ctrl_awaddr,
    input  wire [2:0]                         s_axi_ctrl_awprot,
    input  wire                               s_axi_ctrl_awvalid,
    output wire                               s_axi_ctrl_awready,
    input  wire [31:0]                        s_axi_ctrl_wdata,
    input  wire [3:0]                         s_axi_ctrl_wstrb,
    input  wire                               s_axi_ctrl_wvalid,
    output wire                               s_axi_ctrl_wready,
    output wire [1:0]                         s_axi_ctrl_bresp,
    output wire                               s_axi_ctrl_bvalid,
    input  wire                               s_axi_ctrl_bready,
    input  wire [C_S_AXI_CTRL_ADDR_WIDTH-1:0] s_axi_ctrl_araddr,
    input  wire [2:0]                         s_axi_ctrl_arprot,
    input  wire                               s_axi_ctrl_arvalid,
    output wire                               s_axi_ctrl_arready,
    output wire [31:0]                        s_axi_ctrl_rdata,
    output wire [1:0]                         s_axi_ctrl_rresp,
    output wire                               s_axi_ctrl_rvalid,
    input  wire                               s_axi_ctrl_rready,

    /*
     * AXI4-Stream in
     */
    (* X_INTERFACE_PARAMETER = "FREQ_HZ 100000000" *)
    input  wire [63:0]                        s_axis_tdata,
    input  wire [7:0]                         s_axis_tkeep,
    input  wire                               s_axis_tvalid,
    output wire                               s_axis_tready,
    input  wire                               s_axis_tlast,

    /*
     * AXI4-Stream out
     */
    (* X_INTERFACE_PARAMETER = "FREQ_HZ 100000000" *)
    output wire [63:0]                        m_axis_tdata,
    output wire [7:0]                         m_axis_tkeep,
    output wire                               m_axis_tvalid,
    input  wire                               m_axis_tready,
    output wire                               m_axis_tlast,

    /*
     * Interrupt
     */
    // Vivado infers the interrupt pin from this name; it is also a C++ keyword of
    // some compilers, which Verilator points out
    /* verilator lint_off SYMRSVDWORD */
    (* X_INTERFACE_INFO = "xilinx.com:signal:interrupt:1.0 interrupt INTERRUPT" *)
    (* X_INTERFACE_PARAMETER = "SENSITIVITY LEVEL_HIGH" *)
    output wire                               interrupt
    /* verilator lint_on SYMRSVDWORD */
);

wire rst = !aresetn;

wire        cmd_load, cmd_run, cmd_soft_reset, fault_no_tlast;
wire [15:0] batch;
wire        st_busy, st_done, st_error, st_prog_valid, ev_done, ev_error;
wire [7:0]  st_err_code;
wire [3:0]  st_state;
wire [31:0] cnt_cycles, cnt_stall, cnt_compute, cnt_macs, err_info;

zs_regs #(
    .ADDR_W(C_S_AXI_CTRL_ADDR_WIDTH),
    .LANES(LANES),
    .ACT_BYTES(ACT_BYTES),
    .W_SLOTS(W_SLOTS),
    .CH_CAP(CH_CAP),
    .OUT_CAP(OUT_CAP),
    .MAX_LAYERS(MAX_LAYERS),
    .FAULT_INJECT(FAULT_INJECT),
    .SITE_CAP(SITE_CAP)
)
regs_inst (
    .clk(aclk),
    .rst(rst),
    .s_axi_awaddr(s_axi_ctrl_awaddr),
    .s_axi_awprot(s_axi_ctrl_awprot),
    .s_axi_awvalid(s_axi_ctrl_awvalid),
    .s_axi_awready(s_axi_ctrl_awready),
    .s_axi_wdata(s_axi_ctrl_wdata),
    .s_axi_wstrb(s_axi_ctrl_wstrb),
    .s_axi_wvalid(s_axi_ctrl_wvalid),
    .s_axi_wready(s_axi_ctrl_wready),
    .s_axi_bresp(s_axi_ctrl_bresp),
    .s_axi_bvalid(s_axi_ctrl_bvalid),
    .s_axi_bready(s_axi_ctrl_bready),
    .s_axi_araddr(s_axi_ctrl_araddr),
    .s_axi_arprot(s_axi_ctrl_arprot),
    .s_axi_arvalid(s_axi_ctrl_arvalid),
    .s_axi_arready(s_axi_ctrl_arready),
    .s_axi_rdata(s_axi_ctrl_rdata),
    .s_axi_rresp(s_axi_ctrl_rresp),
    .s_axi_rvalid(s_axi_ctrl_rvalid),
    .s_axi_rready(s_axi_ctrl_rready),
    .cmd_load(cmd_load),
    .cmd_run(cmd_run),
    .cmd_soft_reset(cmd_soft_reset),
    .batch(batch),
    .fault_no_tlast(fault_no_tlast),
    .st_busy(st_busy),
    .st_done(st_done),
    .st_error(st_error),
    .st_prog_valid(st_prog_valid),
    .st_err_code(st_err_code),
    .st_state(st_state),
    .cnt_cycles(cnt_cycles),
    .cnt_stall(cnt_stall),
    .cnt_compute(cnt_compute),
    .cnt_macs(cnt_macs),
    .err_info(err_info),
    .ev_done(ev_done),
    .ev_error(ev_error),
    .irq(interrupt)
);

zs_engine #(
    .LANES(LANES),
    .ACT_BYTES(ACT_BYTES),
    .W_SLOTS(W_SLOTS),
    .CH_CAP(CH_CAP),
    .OUT_CAP(OUT_CAP),
    .MAX_LAYERS(MAX_LAYERS),
    .SITE_CAP(SITE_CAP)
)
engine_inst (
    .clk(aclk),
    .rst(rst),
    .cmd_load(cmd_load),
    .cmd_run(cmd_run),
    .cmd_soft_reset(cmd_soft_reset),
    .batch(batch),
    .fault_no_tlast(fault_no_tlast),
    .st_busy(st_busy),
    .st_done(st_done),
    .st_error(st_error),
    .st_prog_valid(st_prog_valid),
    .st_err_code(st_err_code),
    .st_state(st_state),
    .cnt_cycles(cnt_cycles),
    .cnt_stall(cnt_stall),
    .cnt_compute(cnt_compute),
    .cnt_macs(cnt_macs),
    .err_info(err_info),
    .ev_done(ev_done),
    .ev_error(ev_error),
    .s_axis_tdata(s_axis_tdata),
    .s_axis_tvalid(s_axis_tvalid),
    .s_axis_tready(s_axis_tready),
    .s_axis_tlast(s_axis_tlast),
    .m_axis_tdata(m_axis_tdata),
    .m_axis_tvalid(m_axis_tvalid),
    .m_axis_tready(m_axis_tready),
    .m_axis_tlast(m_axis_tlast)
);

assign m_axis_tkeep = 8'hff;

// beats are always whole 64-bit words; tkeep carries no information
wire unused_ok = &{1'b0, s_axis_tkeep};

endmodule

`resetall
