// zs_rec_fifo.v: channel record prefetch FIFO of the sequencer.
//
// Reads channel records from the channel record RAM (one read per cycle, data
// the cycle after) into a 4-entry queue; head is the oldest record, pop drops it.
// flush empties the queue and restarts the reads at base (the layer's first
// record); reads continue while fetch_en and the queue has room for the record
// in flight, wrapping from record CH_CAP - 1 to 0.

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zs_rec_fifo #
(
    // Weight-store entries (width of a record's first_slot)
    parameter W_SLOTS = 65536,
    // Channel records
    parameter CH_CAP  = 2048
)
(
    input  wire                clk,
    input  wire                rst,

    /*
     * Control
     */
    input  wire                flush,      // empty the queue, read from base on
    input  wire [CH_AW-1:0]    base,
    input  wire                fetch_en,   // records may be read
    input  wire                pop,        // drop head
    output wire [CHAN_W-1:0]   head,

    /*
     * Channel record RAM read
     */
    output wire                chan_rd_en,
    output wire [CH_AW-1:0]    chan_rd_addr,
    input  wire [CHAN_W-1:0]   chan_rd_data
);

localparam SLOT_W = $clog2(W_SLOTS);
localparam CH_AW  = (CH_CAP > 1) ? $clog2(CH_CAP) : 1;
localparam CHAN_W = 32 + 16 + 6 + 24 + SLOT_W;

localparam [31:0]      CH_LAST32 = CH_CAP - 1;
localparam [CH_AW-1:0] CH_LAST   = CH_LAST32[CH_AW-1:0];

reg [CHAN_W-1:0] fifo_mem [0:3];
reg [1:0]        fifo_wp_reg;
reg [1:0]        fifo_rp_reg;
reg [2:0]        fifo_cnt_reg;
reg              pend_reg;           // a read was issued last cycle
reg [CH_AW-1:0]  fptr_reg;           // next record to read

wire push        = pend_reg && !flush;
wire [3:0] occ   = {1'b0, fifo_cnt_reg} + {3'd0, push} - {3'd0, pop};
wire fetch       = fetch_en && (flush || occ <= 4'd3);
wire [CH_AW-1:0] fetch_addr = flush ? base : fptr_reg;

assign head = fifo_mem[fifo_rp_reg];

always @(posedge clk) begin
    if (push) begin
        fifo_mem[fifo_wp_reg] <= chan_rd_data;
    end
    if (rst) begin
        fifo_wp_reg <= 2'd0;
        fifo_rp_reg <= 2'd0;
        fifo_cnt_reg <= 3'd0;
        pend_reg <= 1'b0;
        fptr_reg <= {CH_AW{1'b0}};
    end else begin
        pend_reg <= fetch;
        if (fetch) begin
            fptr_reg <= (fetch_addr == CH_LAST) ? {CH_AW{1'b0}} : fetch_addr + {{(CH_AW-1){1'b0}}, 1'b1};
        end
        if (flush) begin
            fifo_wp_reg <= 2'd0;
            fifo_rp_reg <= 2'd0;
            fifo_cnt_reg <= 3'd0;
        end else begin
            if (push) begin
                fifo_wp_reg <= fifo_wp_reg + 2'd1;
            end
            if (pop) begin
                fifo_rp_reg <= fifo_rp_reg + 2'd1;
            end
            fifo_cnt_reg <= occ[2:0];
        end
    end
end

assign chan_rd_en   = fetch;
assign chan_rd_addr = fetch_addr;

endmodule

`resetall
