// zs_pool.v: inline 2x2 max-pool and the activation write request of
// finished rows.
//
// No pool: the P requantised values of a finished row are written to
// wr_addr + p for the valid pixels (x0 + p < w_valid, in_vmask[p]).
// Pool: tiles come in pairs, even output row then odd row at the same x0;
// the even row's P values are held; on the odd row m_p = max(held_p, v_p) and
// for even p max(m_p, m_p+1) goes to wr_addr + p/2 when x0 + p + 1 < w_valid
// (in_vmask[p + 1]). The write request is combinational (cycle of in_valid).

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zs_pool #
(
    // MAC lanes (maximum pixels per tile)
    parameter LANES  = 8,
    // Activation address width
    parameter ADDR_W = 16
)
(
    input  wire                 clk,

    /*
     * Layer configuration
     */
    input  wire                 cfg_pool,
    input  wire [2:0]           cfg_log2p,

    /*
     * Finished row
     */
    input  wire                 in_valid,
    input  wire                 in_ph,
    input  wire [LANES-1:0]     in_vmask,
    input  wire [ADDR_W-1:0]    in_wr_addr,
    input  wire [LANES*8-1:0]   in_y,

    /*
     * Activation write request
     */
    output reg  [LANES-1:0]     wr_en,
    output wire [ADDR_W-1:0]    wr_addr,
    output reg  [LANES*8-1:0]   wr_data
);

// max over a pixel pair of the current row; the even row keeps its pair maxima,
// the odd row combines them with its own (max is associative and commutative)
reg [LANES*4-1:0] hold_reg;

function [7:0] smax(input [7:0] a, input [7:0] b);
    smax = ($signed(a) > $signed(b)) ? a : b;
endfunction

reg [LANES*4-1:0] pm;
integer p;

always @* begin
    pm = {LANES*4{1'b0}};
    wr_en = {LANES{1'b0}};
    wr_data = {LANES*8{1'b0}};
    for (p = 0; p < LANES/2; p = p + 1) begin
        pm[p*8 +: 8] = smax(in_y[(2*p)*8 +: 8], in_y[(2*p+1)*8 +: 8]);
    end
    if (cfg_pool) begin
        for (p = 0; p < LANES/2; p = p + 1) begin
            wr_data[p*8 +: 8] = smax(hold_reg[p*8 +: 8], pm[p*8 +: 8]);
            wr_en[p] = in_valid && in_ph && ((p[7:0] >> (cfg_log2p - 3'd1)) == 8'd0) && in_vmask[2*p+1];
        end
    end else begin
        wr_data = in_y;
        for (p = 0; p < LANES; p = p + 1) begin
            wr_en[p] = in_valid && ((p[7:0] >> cfg_log2p) == 8'd0) && in_vmask[p];
        end
    end
end

assign wr_addr = in_wr_addr;

always @(posedge clk) begin
    if (in_valid && cfg_pool && !in_ph) begin
        hold_reg <= pm;
    end
end

endmodule

`resetall
