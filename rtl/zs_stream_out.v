// zs_stream_out.v: the engine's AXI4-Stream master.
//
// Two sources share m_axis:
//   results   one block of ceil(n_out / 2) beats per image from the result
//             RAM (value 2i in bits [31:0], 2i+1 in [63:32], an odd count
//             padded with 0); TLAST on the last beat of the batch
//   response  a single beat (load ACK or error), always with TLAST
// The result RAM is two 32-bit banks (even / odd values) read one beat ahead:
// the read address is the index of the beat on the bus next cycle, so the
// block streams at one beat per cycle under any backpressure. Result blocks
// need one cycle of read latency before the first beat (res_start cycle).

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zs_stream_out #
(
    // Output values per image
    parameter OUT_CAP = 1024
)
(
    input  wire               clk,
    input  wire               rst,

    /*
     * Result RAM write (datapath, OUT layer)
     */
    input  wire               res_we,
    input  wire [RES_AW-1:0]  res_addr,
    input  wire [31:0]        res_data,

    /*
     * Control
     */
    input  wire               res_start,        // block of the next image: restart at beat 0
    input  wire               res_active,       // offer result beats
    input  wire [15:0]        n_out,
    input  wire               last_image,       // this block ends the batch
    input  wire               suppress_tlast,   // test-only fault injection
    input  wire               resp_active,      // offer the response beat
    input  wire [63:0]        resp_data,
    output wire               block_done,       // last beat of the block accepted

    /*
     * AXI4-Stream master
     */
    output wire [63:0]        m_axis_tdata,
    output wire               m_axis_tvalid,
    input  wire               m_axis_tready,
    output wire               m_axis_tlast
);

localparam RES_AW  = $clog2(OUT_CAP);
localparam BEAT_AW = (OUT_CAP > 2) ? $clog2((OUT_CAP + 1) / 2) : 1;

reg [BEAT_AW-1:0] idx_reg;

wire [15:0]        n_beats  = (n_out >> 1) + {15'd0, n_out[0]};
wire               fire     = res_active && m_axis_tready;
wire               last     = ({{(16-BEAT_AW){1'b0}}, idx_reg} == n_beats - 16'd1);
wire [BEAT_AW-1:0] rd_addr  = idx_reg + {{(BEAT_AW-1){1'b0}}, fire};
wire [31:0]        even_q, odd_q;

zs_sdp_ram #(
    .DEPTH((OUT_CAP + 1) / 2),
    .WIDTH(32)
)
even_inst (
    .clk(clk),
    .wr_en(res_we && !res_addr[0]),
    .wr_addr(res_addr[RES_AW-1:1]),
    .wr_data(res_data),
    .rd_en(1'b1),
    .rd_addr(rd_addr),
    .rd_data(even_q)
);

zs_sdp_ram #(
    .DEPTH((OUT_CAP + 1) / 2),
    .WIDTH(32)
)
odd_inst (
    .clk(clk),
    .wr_en(res_we && res_addr[0]),
    .wr_addr(res_addr[RES_AW-1:1]),
    .wr_data(res_data),
    .rd_en(1'b1),
    .rd_addr(rd_addr),
    .rd_data(odd_q)
);

always @(posedge clk) begin
    if (rst || res_start) begin
        idx_reg <= {BEAT_AW{1'b0}};
    end else if (fire) begin
        idx_reg <= last ? {BEAT_AW{1'b0}} : rd_addr;
    end
end

wire [31:0] hi = (last && n_out[0]) ? 32'd0 : odd_q;

assign block_done    = fire && last;
assign m_axis_tvalid = res_active || resp_active;
assign m_axis_tdata  = resp_active ? resp_data : {hi, even_q};
assign m_axis_tlast  = resp_active || (res_active && last && last_image && !suppress_tlast);

endmodule

`resetall
