// zs_regs.v: AXI4-Lite register block (32-bit), register map of
// driver/contract.json (ZS_REG_* in zs_contract.vh).
//
// Write channel: AW and W are taken independently (each into a one-entry
// holding register when the other has not arrived), so they may come in
// either order; a write completes when both are present and the B channel is
// free, at most one per cycle, and no beat is ever dropped. Read channel: one
// read per cycle while R is accepted. Every access answers OKAY; unmapped
// reads return 0, writes to read-only registers are ignored.
//
// CTRL bits are one-cycle command pulses (registered). IRQ_STATUS bits are set
// by the engine's done / error events and cleared by writing 1;
// irq = |(IRQ_STATUS & IRQ_EN).

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

`include "zs_contract.vh"

module zs_regs #
(
    // AXI4-Lite address width
    parameter ADDR_W       = 8,
    // Hardware configuration reported in CONFIG0..3
    parameter LANES        = 8,
    parameter ACT_BYTES    = 65536,
    parameter W_SLOTS      = 65536,
    parameter CH_CAP       = 2048,
    parameter OUT_CAP      = 1024,
    parameter MAX_LAYERS   = 32,
    // 1 builds the FAULT register
    parameter FAULT_INJECT = 0,
    // Entries per site list (CONFIG3[15:8]; CONFIG0[16]: sparse-pixel mode when non-zero)
    parameter SITE_CAP     = 64
)
(
    input  wire              clk,
    input  wire              rst,

    /*
     * AXI4-Lite slave
     */
    input  wire [ADDR_W-1:0] s_axi_awaddr,
    input  wire [2:0]        s_axi_awprot,
    input  wire              s_axi_awvalid,
    output wire              s_axi_awready,
    input  wire [31:0]       s_axi_wdata,
    input  wire [3:0]        s_axi_wstrb,
    input  wire              s_axi_wvalid,
    output wire              s_axi_wready,
    output wire [1:0]        s_axi_bresp,
    output wire              s_axi_bvalid,
    input  wire              s_axi_bready,
    input  wire [ADDR_W-1:0] s_axi_araddr,
    input  wire [2:0]        s_axi_arprot,
    input  wire              s_axi_arvalid,
    output wire              s_axi_arready,
    output wire [31:0]       s_axi_rdata,
    output wire [1:0]        s_axi_rresp,
    output wire              s_axi_rvalid,
    input  wire              s_axi_rready,

    /*
     * Commands and settings
     */
    output wire              cmd_load,
    output wire              cmd_run,
    output wire              cmd_soft_reset,
    output wire [15:0]       batch,
    output wire              fault_no_tlast,

    /*
     * Status
     */
    input  wire              st_busy,
    input  wire              st_done,
    input  wire              st_error,
    input  wire              st_prog_valid,
    input  wire [7:0]        st_err_code,
    input  wire [3:0]        st_state,
    input  wire [31:0]       cnt_cycles,
    input  wire [31:0]       cnt_stall,
    input  wire [31:0]       cnt_compute,
    input  wire [31:0]       cnt_macs,
    input  wire [31:0]       err_info,
    input  wire              ev_done,
    input  wire              ev_error,

    output wire              irq
);

initial begin
    if (ADDR_W < 8) begin
        $error("zs_regs: ADDR_W must be at least 8 (instance %m)");
        $finish;
    end
    if (MAX_LAYERS < 1 || MAX_LAYERS > 255 || SITE_CAP > 255) begin
        $error("zs_regs: MAX_LAYERS must be 1..255 and SITE_CAP at most 255 (CONFIG3 fields) (instance %m)");
        $finish;
    end
end

localparam [31:0] LANES_32   = LANES;
localparam [31:0] CH_CAP_32  = CH_CAP;
localparam [31:0] OUT_CAP_32 = OUT_CAP;
localparam [7:0] LANES_8    = LANES_32[7:0];
localparam integer LOG2_ACT = $clog2(ACT_BYTES);
localparam [7:0] LOG2_ACT_8 = LOG2_ACT[7:0];
localparam [31:0] W_SLOTS_32 = W_SLOTS;
localparam [15:0] CH_CAP_16  = CH_CAP_32[15:0];
localparam [15:0] OUT_CAP_16 = OUT_CAP_32[15:0];
localparam [0:0]  FAULT_BIT  = (FAULT_INJECT != 0);
localparam [0:0]  SITES_BIT  = (SITE_CAP != 0);
localparam [31:0] MAX_LAYERS_32 = MAX_LAYERS;
localparam [31:0] SITE_CAP_32   = SITE_CAP;
localparam [7:0]  MAX_LAYERS_8  = MAX_LAYERS_32[7:0];
localparam [7:0]  SITE_CAP_8    = SITE_CAP_32[7:0];

/*
 * Write channel
 */
reg              aw_full_reg;
reg [ADDR_W-1:0] aw_addr_reg;
reg              w_full_reg;
reg [31:0]       w_data_reg;
reg [3:0]        w_strb_reg;
reg              bvalid_reg;

wire              aw_have  = aw_full_reg || s_axi_awvalid;
wire              w_have   = w_full_reg || s_axi_wvalid;
wire              wr_fire  = aw_have && w_have && (!bvalid_reg || s_axi_bready);
wire [ADDR_W-1:0] wr_addr  = aw_full_reg ? aw_addr_reg : s_axi_awaddr;
wire [31:0]       wr_data  = w_full_reg ? w_data_reg : s_axi_wdata;
wire [3:0]        wr_strb  = w_full_reg ? w_strb_reg : s_axi_wstrb;
wire [7:0]        wr_reg   = {wr_addr[7:2], 2'b00};

assign s_axi_awready = !aw_full_reg;
assign s_axi_wready  = !w_full_reg;
assign s_axi_bvalid  = bvalid_reg;
assign s_axi_bresp   = 2'b00;

always @(posedge clk) begin
    if (s_axi_awvalid && !aw_full_reg) begin
        aw_addr_reg <= s_axi_awaddr;
    end
    if (s_axi_wvalid && !w_full_reg) begin
        w_data_reg <= s_axi_wdata;
        w_strb_reg <= s_axi_wstrb;
    end
    if (rst) begin
        aw_full_reg <= 1'b0;
        w_full_reg <= 1'b0;
        bvalid_reg <= 1'b0;
    end else begin
        // a channel is held when its beat arrives without completing a write
        aw_full_reg <= aw_have && !wr_fire;
        w_full_reg <= w_have && !wr_fire;
        if (wr_fire) begin
            bvalid_reg <= 1'b1;
        end else if (s_axi_bready) begin
            bvalid_reg <= 1'b0;
        end
    end
end

/*
 * Registers
 */
reg        cmd_load_reg;
reg        cmd_run_reg;
reg        cmd_soft_reset_reg;
reg [15:0] batch_reg;
reg [1:0]  irq_en_reg;
reg [1:0]  irq_status_reg;
reg        fault_reg;

wire ctrl_wr = wr_fire && (wr_reg == `ZS_REG_CTRL) && wr_strb[0];

always @(posedge clk) begin
    if (rst) begin
        cmd_load_reg <= 1'b0;
        cmd_run_reg <= 1'b0;
        cmd_soft_reset_reg <= 1'b0;
        batch_reg <= 16'd1;
        irq_en_reg <= 2'b00;
        irq_status_reg <= 2'b00;
        fault_reg <= 1'b0;
    end else begin
        cmd_load_reg <= ctrl_wr && wr_data[`ZS_CTRL_LOAD];
        cmd_run_reg <= ctrl_wr && wr_data[`ZS_CTRL_RUN];
        cmd_soft_reset_reg <= ctrl_wr && wr_data[`ZS_CTRL_SOFT_RESET];
        if (wr_fire && wr_reg == `ZS_REG_BATCH) begin
            if (wr_strb[0]) batch_reg[7:0] <= wr_data[7:0];
            if (wr_strb[1]) batch_reg[15:8] <= wr_data[15:8];
        end
        if (wr_fire && wr_reg == `ZS_REG_IRQ_EN && wr_strb[0]) begin
            irq_en_reg <= wr_data[1:0];
        end
        irq_status_reg <= (irq_status_reg & ~((wr_fire && wr_reg == `ZS_REG_IRQ_STATUS && wr_strb[0]) ? wr_data[1:0] : 2'b00))
                          | {ev_error, ev_done};
        if (FAULT_BIT && wr_fire && wr_reg == `ZS_REG_FAULT && wr_strb[0]) begin
            fault_reg <= wr_data[0];
        end
    end
end

assign cmd_load       = cmd_load_reg;
assign cmd_run        = cmd_run_reg;
assign cmd_soft_reset = cmd_soft_reset_reg;
assign batch          = batch_reg;
assign fault_no_tlast = FAULT_BIT && fault_reg;
assign irq            = |(irq_status_reg & irq_en_reg);

/*
 * Read channel
 */
reg        rvalid_reg;
reg [31:0] rdata_reg;
reg [31:0] rd_mux;

wire       ar_fire = s_axi_arvalid && (!rvalid_reg || s_axi_rready);
wire [7:0] rd_reg  = {s_axi_araddr[7:2], 2'b00};

always @* begin
    case (rd_reg)
        `ZS_REG_ID:         rd_mux = `ZS_ID_MAGIC;
        `ZS_REG_VERSION:    rd_mux = {`ZS_RTL_VERSION, `ZS_FORMAT_VERSION};
        `ZS_REG_CONFIG0:    rd_mux = {14'd0, FAULT_BIT, SITES_BIT, LOG2_ACT_8, LANES_8};
        `ZS_REG_CONFIG1:    rd_mux = W_SLOTS_32;
        `ZS_REG_CONFIG2:    rd_mux = {OUT_CAP_16, CH_CAP_16};
        `ZS_REG_CONFIG3:    rd_mux = {16'd0, SITE_CAP_8, MAX_LAYERS_8};
        `ZS_REG_STATUS:     rd_mux = {12'd0, st_state, st_err_code, 4'd0, st_prog_valid, st_error, st_done, st_busy};
        `ZS_REG_BATCH:      rd_mux = {16'd0, batch_reg};
        `ZS_REG_CYCLES:     rd_mux = cnt_cycles;
        `ZS_REG_STALL:      rd_mux = cnt_stall;
        `ZS_REG_COMPUTE:    rd_mux = cnt_compute;
        `ZS_REG_MACS:       rd_mux = cnt_macs;
        `ZS_REG_IRQ_EN:     rd_mux = {30'd0, irq_en_reg};
        `ZS_REG_IRQ_STATUS: rd_mux = {30'd0, irq_status_reg};
        `ZS_REG_ERR_INFO:   rd_mux = err_info;
        `ZS_REG_FAULT:      rd_mux = {31'd0, FAULT_BIT && fault_reg};
        default:            rd_mux = 32'd0;
    endcase
end

always @(posedge clk) begin
    if (ar_fire) begin
        rdata_reg <= rd_mux;
    end
    if (rst) begin
        rvalid_reg <= 1'b0;
    end else if (ar_fire) begin
        rvalid_reg <= 1'b1;
    end else if (s_axi_rready) begin
        rvalid_reg <= 1'b0;
    end
end

assign s_axi_arready = !rvalid_reg || s_axi_rready;
assign s_axi_rvalid  = rvalid_reg;
assign s_axi_rdata   = rdata_reg;
assign s_axi_rresp   = 2'b00;

// protection bits carry no meaning here; only byte 0/1 strobes matter
generate
if (ADDR_W > 8) begin : g_wide_addr
    wire unused_addr = &{1'b0, wr_addr[ADDR_W-1:8], s_axi_araddr[ADDR_W-1:8]};
end
endgenerate

wire unused_ok = &{1'b0, s_axi_awprot, s_axi_arprot, wr_addr[1:0], s_axi_araddr[1:0], wr_strb[3:2],
                   wr_data[31:16]};

endmodule

`resetall
