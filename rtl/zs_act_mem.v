// zs_act_mem.v: the LANES-way banked activation memory.
//
// ACT_BYTES bytes; byte address a lives in bank a mod LANES at row
// a div LANES. Each bank is a simple dual-port RAM with one registered read
// and one write per cycle.
//
// Write side: one request per cycle writes up to LANES bytes at consecutive
// addresses, byte k of wr_data to wr_addr + k (mod ACT_BYTES) when wr_en[k];
// consecutive addresses fall in distinct banks, so a rotation by
// wr_addr mod LANES routes them. The input writer, the layer clears and the
// datapath's output writes all use this form.
//
// Read side: bank b reads row rd_row[b]; rd_data[b] follows one cycle later.
// The crossbar from banks to lanes lives in zs_datapath.

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zs_act_mem #
(
    // Banks (= MAC lanes): 4, 8, 16 or 32
    parameter LANES     = 8,
    // Bytes of activation memory (power of two, at most 65536)
    parameter ACT_BYTES = 65536
)
(
    input  wire                   clk,

    /*
     * Write request: LANES consecutive bytes
     */
    input  wire [LANES-1:0]       wr_en,
    input  wire [ADDR_W-1:0]      wr_addr,
    input  wire [LANES*8-1:0]     wr_data,

    /*
     * Per-bank reads
     */
    input  wire [LANES*ROW_W-1:0] rd_row,
    output wire [LANES*8-1:0]     rd_data
);

localparam LOG2L  = $clog2(LANES);
localparam ADDR_W = $clog2(ACT_BYTES);
localparam ROW_W  = ADDR_W - LOG2L;

initial begin
    if ((1 << LOG2L) != LANES || (1 << ADDR_W) != ACT_BYTES || ACT_BYTES < 16 * LANES || ACT_BYTES > 65536) begin
        $error("zs_act_mem: LANES and ACT_BYTES must be powers of two, 16*LANES <= ACT_BYTES <= 65536 (instance %m)");
        $finish;
    end
end

wire [LOG2L-1:0] a0  = wr_addr[LOG2L-1:0];
wire [ROW_W-1:0] row = wr_addr[ADDR_W-1:LOG2L];

// the request rotated by a0: element (b - a0) mod LANES of {wr_en, wr_data} to bank b,
// as a log shifter (stage s rotates by 2^s when a0[s])
wire [LANES*9-1:0] rot [0:LOG2L];

genvar gb, gs;
generate
for (gb = 0; gb < LANES; gb = gb + 1) begin : g_req
    assign rot[0][gb*9 +: 9] = {wr_en[gb], wr_data[gb*8 +: 8]};
end
for (gs = 0; gs < LOG2L; gs = gs + 1) begin : g_stage
    for (gb = 0; gb < LANES; gb = gb + 1) begin : g_lane
        localparam integer SRC = (gb + LANES - (1 << gs)) % LANES;
        assign rot[gs+1][gb*9 +: 9] = a0[gs] ? rot[gs][SRC*9 +: 9] : rot[gs][gb*9 +: 9];
    end
end
for (gb = 0; gb < LANES; gb = gb + 1) begin : g_bank
    localparam [LOG2L-1:0] BANK = gb;
    // element (b - a0) mod LANES of the request lands in this bank
    // (the borrow says the element wrapped into the next row)
    wire [LOG2L:0]   diff  = {1'b0, BANK} - {1'b0, a0};
    wire [ROW_W-1:0] b_row = row + {{(ROW_W-1){1'b0}}, diff[LOG2L]};

    zs_sdp_ram #(
        .DEPTH(ACT_BYTES / LANES),
        .WIDTH(8)
    )
    bank_inst (
        .clk(clk),
        .wr_en(rot[LOG2L][gb*9 + 8]),
        .wr_addr(b_row),
        .wr_data(rot[LOG2L][gb*9 +: 8]),
        .rd_en(1'b1),
        .rd_addr(rd_row[gb*ROW_W +: ROW_W]),
        .rd_data(rd_data[gb*8 +: 8])
    );
end
endgenerate

endmodule

`resetall
