/*
 * sim_harness.v: zeroskip_top with a simulation-only DMA (sim_dma) on its streams.
 *
 * The toplevel of the sim backend's simulation (zeroskip.tb.sim_server): the server
 * drives the AXI-Lite port (s_axi_ctrl_*) with cocotbext-axi and the DMA control
 * signals; the engine's streams never leave the HDL, so a transfer costs no Python work
 * per cycle. `cycle` counts clock cycles since reset for the server's timeouts.
 *
 * The server touches only this module's own signals, so a Verilator build needs VPI access
 * to nothing else: with tb/sim_harness.vlt instead of --public-flat-rw, Verilator optimises
 * the engine itself (about 5x faster).
 *
 * The 100 MHz clock comes from an HDL process when built with ZS_SIM_HDL_CLOCK defined
 * (as zeroskip.tb.simbuild builds it; Verilator needs --timing), which saves the simulator
 * a VPI callback per clock edge, or else from the server (a GPI clock, no Python per
 * edge); `hdl_clock` tells the server which.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module sim_harness #(
    // engine parameters (docs/hardware.md, "Parameters")
    parameter LANES = 8,
    parameter ACT_BYTES = 65536,
    parameter W_SLOTS = 65536,
    parameter CH_CAP = 2048,
    parameter OUT_CAP = 1024,
    parameter MAX_LAYERS = 32,
    parameter SITE_CAP = 64,
    parameter FAULT_INJECT = 0,
    // AXI-Lite address width
    parameter AXIL_ADDR_WIDTH = 8,
    // beats per DMA memory (each direction)
    parameter MEM_BEATS = 65536,
    // beat address width
    parameter MEM_ADDR_WIDTH = $clog2(MEM_BEATS)
)
(
`ifdef ZS_SIM_HDL_CLOCK
    output reg                         clk,
`else
    input  wire                        clk,
`endif
    output wire                        hdl_clock,
    input  wire                        rst,

    /*
     * AXI-Lite slave: the engine's register port
     */
    input  wire [AXIL_ADDR_WIDTH-1:0]  s_axi_ctrl_awaddr,
    input  wire [2:0]                  s_axi_ctrl_awprot,
    input  wire                        s_axi_ctrl_awvalid,
    output wire                        s_axi_ctrl_awready,
    input  wire [31:0]                 s_axi_ctrl_wdata,
    input  wire [3:0]                  s_axi_ctrl_wstrb,
    input  wire                        s_axi_ctrl_wvalid,
    output wire                        s_axi_ctrl_wready,
    output wire [1:0]                  s_axi_ctrl_bresp,
    output wire                        s_axi_ctrl_bvalid,
    input  wire                        s_axi_ctrl_bready,
    input  wire [AXIL_ADDR_WIDTH-1:0]  s_axi_ctrl_araddr,
    input  wire [2:0]                  s_axi_ctrl_arprot,
    input  wire                        s_axi_ctrl_arvalid,
    output wire                        s_axi_ctrl_arready,
    output wire [31:0]                 s_axi_ctrl_rdata,
    output wire [1:0]                  s_axi_ctrl_rresp,
    output wire                        s_axi_ctrl_rvalid,
    input  wire                        s_axi_ctrl_rready,

    /*
     * DMA control (sim_dma)
     */
    input  wire                        dma_rst,
    input  wire                        mm2s_req,
    input  wire [MEM_ADDR_WIDTH:0]     mm2s_beats,
    output wire                        mm2s_done,
    input  wire                        s2mm_req,
    input  wire [MEM_ADDR_WIDTH:0]     s2mm_cap,
    output wire                        s2mm_done,
    output wire [MEM_ADDR_WIDTH:0]     s2mm_count,

    output wire                        irq,
    output reg  [63:0]                 cycle
);

`ifdef ZS_SIM_HDL_CLOCK
initial clk = 1'b0;
always #5 clk = ~clk;
assign hdl_clock = 1'b1;
`else
assign hdl_clock = 1'b0;
`endif

wire [63:0] in_tdata;
wire        in_tvalid;
wire        in_tready;
wire        in_tlast;
wire [63:0] out_tdata;
wire        out_tvalid;
wire        out_tready;
wire        out_tlast;
wire [7:0]  out_tkeep;   // whole beats only; the DMA model stores all 8 bytes

always @(posedge clk) begin
    if (rst) begin
        cycle <= 64'd0;
    end else begin
        cycle <= cycle + 64'd1;
    end
end

sim_dma #(
    .DATA_WIDTH(64),
    .MEM_BEATS(MEM_BEATS),
    .ADDR_WIDTH(MEM_ADDR_WIDTH)
)
u_dma (
    .clk(clk),
    .rst(rst || dma_rst),
    .mm2s_req(mm2s_req),
    .mm2s_beats(mm2s_beats),
    .mm2s_done(mm2s_done),
    .s2mm_req(s2mm_req),
    .s2mm_cap(s2mm_cap),
    .s2mm_done(s2mm_done),
    .s2mm_count(s2mm_count),
    .m_axis_tdata(in_tdata),
    .m_axis_tvalid(in_tvalid),
    .m_axis_tready(in_tready),
    .m_axis_tlast(in_tlast),
    .s_axis_tdata(out_tdata),
    .s_axis_tvalid(out_tvalid),
    .s_axis_tready(out_tready),
    .s_axis_tlast(out_tlast)
);

zeroskip_top #(
    .LANES(LANES),
    .ACT_BYTES(ACT_BYTES),
    .W_SLOTS(W_SLOTS),
    .CH_CAP(CH_CAP),
    .OUT_CAP(OUT_CAP),
    .MAX_LAYERS(MAX_LAYERS),
    .SITE_CAP(SITE_CAP),
    .FAULT_INJECT(FAULT_INJECT),
    .C_S_AXI_CTRL_ADDR_WIDTH(AXIL_ADDR_WIDTH)
)
u_top (
    .aclk(clk),
    .aresetn(!rst),
    .s_axi_ctrl_awaddr(s_axi_ctrl_awaddr),
    .s_axi_ctrl_awprot(s_axi_ctrl_awprot),
    .s_axi_ctrl_awvalid(s_axi_ctrl_awvalid),
    .s_axi_ctrl_awready(s_axi_ctrl_awready),
    .s_axi_ctrl_wdata(s_axi_ctrl_wdata),
    .s_axi_ctrl_wstrb(s_axi_ctrl_wstrb),
    .s_axi_ctrl_wvalid(s_axi_ctrl_wvalid),
    .s_axi_ctrl_wready(s_axi_ctrl_wready),
    .s_axi_ctrl_bresp(s_axi_ctrl_bresp),
    .s_axi_ctrl_bvalid(s_axi_ctrl_bvalid),
    .s_axi_ctrl_bready(s_axi_ctrl_bready),
    .s_axi_ctrl_araddr(s_axi_ctrl_araddr),
    .s_axi_ctrl_arprot(s_axi_ctrl_arprot),
    .s_axi_ctrl_arvalid(s_axi_ctrl_arvalid),
    .s_axi_ctrl_arready(s_axi_ctrl_arready),
    .s_axi_ctrl_rdata(s_axi_ctrl_rdata),
    .s_axi_ctrl_rresp(s_axi_ctrl_rresp),
    .s_axi_ctrl_rvalid(s_axi_ctrl_rvalid),
    .s_axi_ctrl_rready(s_axi_ctrl_rready),
    .s_axis_tdata(in_tdata),
    .s_axis_tkeep(8'hFF),
    .s_axis_tvalid(in_tvalid),
    .s_axis_tready(in_tready),
    .s_axis_tlast(in_tlast),
    .m_axis_tdata(out_tdata),
    .m_axis_tkeep(out_tkeep),
    .m_axis_tvalid(out_tvalid),
    .m_axis_tready(out_tready),
    .m_axis_tlast(out_tlast),
    .interrupt(irq)
);

endmodule

`resetall
