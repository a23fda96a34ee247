// zs_block_decode.v: weight-block decode of the program loader.
//
// A weight block is three beats: 16 run codes (4 bits each) and 16 weights
// (8 bits each). In decode (dec, one stream entry per cycle, code j) a run code
// r <= 14 puts an entry at k = k_prev + r with the block's weight j, code 15 fills
// the rest of the current group with zero-weight entries at k_prev. A row starts
// with k = 0 and its group count (n_groups) from the channel record RAM; the
// layer ends with the last group of row c_out - 1.
//
// Entry pipeline:
//   D0  decode: k, weight, slot, lanes filled (1, or up to the group's end)
//   D1  offset = (k >> tb) * in_ch_stride + tap_offset[k & (2^tb - 1)]
//   D2  store word: the entry {offset, weight} to lanes [slot, slot + fill) of
//       word slot / LANES of the weight store
//
// row_init (the layer's last channel record is accepted) starts the layer's rows,
// its slots at first_slot; step advances the decode by one entry.

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zs_block_decode #
(
    // MAC lanes: 4, 8, 16 or 32
    parameter LANES   = 8,
    // Weight-store entries
    parameter W_SLOTS = 65536,
    // Channel records
    parameter CH_CAP  = 2048
)
(
    input  wire                  clk,
    input  wire                  rst,
    input  wire                  start,        // a program packet follows: the pipeline empties

    /*
     * Block beats
     */
    input  wire [63:0]           blk_data,
    input  wire                  load_codes,   // beat 0: run codes
    input  wire                  load_wts_lo,  // beat 1: weights 0-7
    input  wire                  load_wts_hi,  // beat 2: weights 8-15, decode starts at code 0

    /*
     * Layer
     */
    input  wire                  row_init,     // the layer's rows start at first_slot
    input  wire [SLOT_W-1:0]     first_slot,
    input  wire [CH_AW-1:0]      c_out_m1,     // C_out - 1
    input  wire [2:0]            lq,           // log2 Q
    input  wire [3:0]            tb,           // tap-index bits (at most 4)
    input  wire [15:0]           ics,          // in_ch_stride
    input  wire [255:0]          taps,         // tap offsets, 16 bits each
    input  wire [GW-1:0]         rd_ng,        // n_groups of the next row to start

    /*
     * Decode
     */
    input  wire                  dec,          // loader state DEC
    input  wire                  step,         // dec without reset, start or error: advance
    output wire                  row_start,    // the entry starts a row
    output wire                  layer_end,    // the entry ends the layer
    output wire                  dec_end,      // the entry ends the block or the layer

    /*
     * Weight store writes
     */
    output reg  [LANES-1:0]      ws_we,
    output wire [WS_AW-1:0]      ws_waddr,
    output wire [23:0]           ws_wentry
);

localparam LOG2L  = $clog2(LANES);
localparam SLOT_W = $clog2(W_SLOTS);
localparam WS_AW  = (W_SLOTS / LANES > 1) ? $clog2(W_SLOTS / LANES) : 1;
localparam CH_AW  = (CH_CAP > 1) ? $clog2(CH_CAP) : 1;
// a decoded row has n_groups <= W_SLOTS (the layer's slots were checked against W_SLOTS)
localparam GW     = SLOT_W + 1;

integer i;

reg [63:0]       codes_reg;
reg [127:0]      wts_reg;
reg [3:0]        j_reg;
reg [CH_AW-1:0]  row_reg;            // rows of the layer started so far (mod 2^CH_AW)
reg              row_last_reg;       // the current row is the layer's last
reg [GW-1:0]     grp_left_reg;       // groups left in the current row (0: next entry starts a row)
reg [19:0]       k_reg;
reg [SLOT_W-1:0] eslot_reg;          // next slot

/*
 * D0: decode, one stream entry per cycle
 */
reg  [3:0]  code_arr [0:15];
reg  [7:0]  wt_arr [0:15];
always @* begin
    for (i = 0; i < 16; i = i + 1) begin
        code_arr[i] = codes_reg[i*4 +: 4];
        wt_arr[i] = wts_reg[i*8 +: 8];
    end
end
wire [3:0]  code      = code_arr[j_reg];
wire [7:0]  wt        = wt_arr[j_reg];
wire        gend      = (code == 4'd15);
assign      row_start = (grp_left_reg == {GW{1'b0}});
wire [GW-1:0] cur_grp = row_start ? rd_ng : grp_left_reg;
wire        cur_last  = row_start ? (row_reg == c_out_m1) : row_last_reg;
wire [19:0] k_base    = row_start ? 20'd0 : k_reg;
wire [19:0] k_new     = gend ? k_base : k_base + {16'd0, code};
wire [LOG2L-1:0] qmask = ~({LOG2L{1'b1}} << lq);
wire [LOG2L:0]   fill  = gend ? ({1'b0, qmask} - {1'b0, eslot_reg[LOG2L-1:0] & qmask} + {{LOG2L{1'b0}}, 1'b1})
                              : {{LOG2L{1'b0}}, 1'b1};
// the entry completes its group when the next slot is group-aligned
wire [LOG2L:0]   slot_nx  = {1'b0, eslot_reg[LOG2L-1:0]} + fill;
wire        grp_done  = ((slot_nx[LOG2L-1:0] & qmask) == {LOG2L{1'b0}});
wire [GW-1:0] grp_after = grp_done ? cur_grp - {{(GW-1){1'b0}}, 1'b1} : cur_grp;
assign      layer_end = dec && (grp_after == {GW{1'b0}}) && cur_last;
assign      dec_end   = dec && (layer_end || j_reg == 4'd15);

always @(posedge clk) begin
    if (load_codes) begin
        codes_reg <= blk_data;
    end
    if (load_wts_lo) begin
        wts_reg[63:0] <= blk_data;
    end
    if (load_wts_hi) begin
        wts_reg[127:64] <= blk_data;
        j_reg <= 4'd0;
    end
    if (row_init) begin
        eslot_reg <= first_slot;
        row_reg <= {CH_AW{1'b0}};
        grp_left_reg <= {GW{1'b0}};
        row_last_reg <= 1'b0;
    end
    if (step) begin
        j_reg <= j_reg + 4'd1;
        k_reg <= k_new;
        grp_left_reg <= grp_after;
        eslot_reg <= eslot_reg + {{(SLOT_W-LOG2L-1){1'b0}}, fill};
        if (row_start) begin
            row_reg <= row_reg + {{(CH_AW-1){1'b0}}, 1'b1};
            row_last_reg <= cur_last;
        end
    end
end

/*
 * D1 (offset) -> D2 (store word)
 */
reg              d1_valid_reg;
reg [19:0]       d1_k_reg;
reg [7:0]        d1_w_reg;
reg [SLOT_W-1:0] d1_slot_reg;
reg [LOG2L:0]    d1_fill_reg;

reg              d2_valid_reg;
reg [23:0]       d2_ent_reg;
reg [SLOT_W-1:0] d2_slot_reg;
reg [LOG2L:0]    d2_fill_reg;

wire [19:0] d1_c    = d1_k_reg >> tb[2:0];   // tb <= 4 (checked on load)
wire [31:0] d1_prod = d1_c[15:0] * ics;
wire [3:0]  d1_tap  = d1_k_reg[3:0] & ~(4'hf << tb);
reg  [15:0] d1_tapv;
wire [15:0] d1_off  = d1_prod[15:0] + d1_tapv;

always @* begin
    case (d1_tap)
        4'd0:  d1_tapv = taps[0*16 +: 16];
        4'd1:  d1_tapv = taps[1*16 +: 16];
        4'd2:  d1_tapv = taps[2*16 +: 16];
        4'd3:  d1_tapv = taps[3*16 +: 16];
        4'd4:  d1_tapv = taps[4*16 +: 16];
        4'd5:  d1_tapv = taps[5*16 +: 16];
        4'd6:  d1_tapv = taps[6*16 +: 16];
        4'd7:  d1_tapv = taps[7*16 +: 16];
        4'd8:  d1_tapv = taps[8*16 +: 16];
        4'd9:  d1_tapv = taps[9*16 +: 16];
        4'd10: d1_tapv = taps[10*16 +: 16];
        4'd11: d1_tapv = taps[11*16 +: 16];
        4'd12: d1_tapv = taps[12*16 +: 16];
        4'd13: d1_tapv = taps[13*16 +: 16];
        4'd14: d1_tapv = taps[14*16 +: 16];
        default: d1_tapv = taps[15*16 +: 16];
    endcase
end

// the entry goes to lane slots [lane, lane + fill) of its word
wire [LOG2L-1:0]   d2_lane = d2_slot_reg[LOG2L-1:0];
wire [LOG2L:0]     d2_end  = {1'b0, d2_lane} + d2_fill_reg;

always @* begin
    for (i = 0; i < LANES; i = i + 1) begin
        ws_we[i] = d2_valid_reg && i[LOG2L:0] >= {1'b0, d2_lane} && i[LOG2L:0] < d2_end;
    end
end

assign ws_waddr  = d2_slot_reg[SLOT_W-1:LOG2L];
assign ws_wentry = d2_ent_reg;

always @(posedge clk) begin
    d1_k_reg <= k_new;
    d1_w_reg <= gend ? 8'd0 : wt;
    d1_slot_reg <= eslot_reg;
    d1_fill_reg <= fill;
    d2_ent_reg <= {d1_off, d1_w_reg};
    d2_slot_reg <= d1_slot_reg;
    d2_fill_reg <= d1_fill_reg;
    if (rst || start) begin
        d1_valid_reg <= 1'b0;
        d2_valid_reg <= 1'b0;
    end else begin
        d1_valid_reg <= dec;
        d2_valid_reg <= d1_valid_reg;
    end
end

// the slot carry, upper tap-index bits, product bits above 16
wire unused_ok = &{1'b0, slot_nx[LOG2L], d1_prod[31:16], d1_c[19:16]};

endmodule

`resetall
