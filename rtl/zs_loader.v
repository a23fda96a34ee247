// zs_loader.v: program loader.
//
// Parses a program packet (docs/hardware.md, "Program packet"), runs the checks of
// "Checks on load" in program order and writes the engine's memories:
//   layer descriptor RAM  beats 0-3 of each descriptor, 4 words per layer
//   channel record RAM    {first_slot, n_groups, S, M, bias} per channel
//   weight store          store entries {offset, weight}, LANES per word
// Weight blocks are decoded by zs_block_decode after their third beat, one stream
// entry per cycle (the stream is held meanwhile): a run code r <= 14 puts an entry at
// k = k_prev + r with the block's weight, code 15 fills the rest of the current group
// with zero-weight entries at k_prev; offset = (k >> tb) * in_ch_stride +
// tap_offset[k & (2^tb - 1)].
// A row's slot count (n_groups << log2 Q) is read back from the channel record RAM.
//
// Errors: err pulses for one cycle with the code and the beat index the engine
// reports (err_idx, see "Checks on load"); the loader then idles. Checks that need
// several beats of a section fire on the section's last beat; the end-of-layer and
// end-of-program checks of a weight block fire when its decode finishes. done pulses
// once the program's last beat (with TLAST) is checked and every entry is written.
//
// Sparse-pixel mode (SITE_CAP > 0): the header's input mode, n_max, threshold, C_in and
// pad are checked and kept, with the first layer's grid (strides, H, W) and the input
// grid's interior base in_base + pad * (row_stride + 1). With SITE_CAP = 0 input modes
// other than dense are refused with CAPACITY, sparse-pixel layer flags with BAD_LAYER.

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

`include "zs_contract.vh"

module zs_loader #
(
    // MAC lanes: 4, 8, 16 or 32
    parameter LANES      = 8,
    // Activation memory bytes
    parameter ACT_BYTES  = 65536,
    // Weight-store entries
    parameter W_SLOTS    = 65536,
    // Channel records
    parameter CH_CAP     = 2048,
    // Output values per image
    parameter OUT_CAP    = 1024,
    // Layer descriptors
    parameter MAX_LAYERS = 32,
    // Entries per site list (0: no sparse-pixel mode)
    parameter SITE_CAP   = 64
)
(
    input  wire                  clk,
    input  wire                  rst,

    /*
     * Control
     */
    input  wire                  start,      // a program packet follows
    input  wire [31:0]           beat_idx,   // index of the current beat in the packet
    input  wire [31:0]           beat_idx_p1, // beat_idx + 1
    output wire                  done,
    output reg                   err,
    output reg  [7:0]            err_code,
    output reg  [31:0]           err_idx,

    /*
     * Program stream
     */
    input  wire [63:0]           s_tdata,
    input  wire                  s_tlast,
    input  wire                  s_tvalid,
    output wire                  s_tready,

    /*
     * Program header fields (valid after done)
     */
    output wire [7:0]            prog_n_layers,
    output wire [ADDR_W-1:0]     prog_in_base,
    output wire [16:0]           prog_in_bytes,
    output wire [15:0]           prog_n_out,
    output wire [1:0]            prog_in_mode,
    output wire [7:0]            prog_n_max,
    output wire [7:0]            prog_thr,
    output wire [3:0]            prog_c_in,
    output wire [3:0]            prog_pad,
    output wire [15:0]           prog_h0,
    output wire [15:0]           prog_w0,
    output wire [ADDR_W-1:0]     prog_rs0,
    output wire [ADDR_W-1:0]     prog_cs0,
    output wire [ADDR_W-1:0]     prog_interior,

    /*
     * Memory writes
     */
    output reg                   desc_we,
    output wire [LAYER_W+1:0]    desc_waddr,
    output wire [63:0]           desc_wdata,
    output reg                   chan_we,
    output wire [CH_AW-1:0]      chan_waddr,
    output wire [CHAN_W-1:0]     chan_wdata,
    output wire                  chan_rd_en,
    output wire [CH_AW-1:0]      chan_rd_addr,
    input  wire [CHAN_W-1:0]     chan_rd_data,
    output wire [LANES-1:0]      ws_we,
    output wire [WS_AW-1:0]      ws_waddr,
    output wire [23:0]           ws_wentry
);

localparam LOG2L   = $clog2(LANES);
localparam ADDR_W  = $clog2(ACT_BYTES);
localparam SLOT_W  = $clog2(W_SLOTS);
localparam WS_AW   = (W_SLOTS / LANES > 1) ? $clog2(W_SLOTS / LANES) : 1;
localparam CH_AW   = (CH_CAP > 1) ? $clog2(CH_CAP) : 1;
localparam LAYER_W = (MAX_LAYERS > 1) ? $clog2(MAX_LAYERS) : 1;
localparam CHAN_W  = 32 + 16 + 6 + 24 + SLOT_W;

initial begin
    if (MAX_LAYERS < 1 || MAX_LAYERS > 255 || CH_CAP < 1 || CH_CAP > 65535 || OUT_CAP < 1 || OUT_CAP > 65535) begin
        $error("zs_loader: MAX_LAYERS must be 1..255, CH_CAP and OUT_CAP 1..65535 (instance %m)");
        $finish;
    end
    if (W_SLOTS % LANES != 0 || W_SLOTS < 2 * LANES || W_SLOTS > (1 << 22)) begin
        $error("zs_loader: W_SLOTS must be a multiple of LANES, at most 2^22 (instance %m)");
        $finish;
    end
end

localparam [2:0]
    L_IDLE = 3'd0,
    L_HDR  = 3'd1,
    L_DESC = 3'd2,
    L_CHAN = 3'd3,
    L_BLK  = 3'd4,
    L_DEC  = 3'd5,
    L_TAIL = 3'd6,
    L_DONE = 3'd7;

localparam [31:0] ACT_BYTES_32  = ACT_BYTES;
localparam [31:0] W_SLOTS_32    = W_SLOTS;
localparam [31:0] CH_CAP_32     = CH_CAP;
localparam [31:0] OUT_CAP_32    = OUT_CAP;
localparam [31:0] MAX_LAYERS_32 = MAX_LAYERS;
localparam [31:0] LANES_32      = LANES;
localparam [32:0] ACT_BYTES_33  = {1'b0, ACT_BYTES_32};
localparam [32:0] W_SLOTS_33    = {1'b0, W_SLOTS_32};
localparam [16:0] CH_CAP_17     = CH_CAP_32[16:0];
localparam [15:0] OUT_CAP_16    = OUT_CAP_32[15:0];
localparam [7:0]  MAX_LAYERS_8  = MAX_LAYERS_32[7:0];
localparam [7:0]  LANES_8       = LANES_32[7:0];
localparam [15:0] LOG2_ACT_16   = ADDR_W[15:0];
localparam [4:0]  LOG2L_5       = LOG2L[4:0];
localparam [31:0] SITE_CAP_32   = SITE_CAP;
localparam [8:0]  SITE_CAP_9    = SITE_CAP_32[8:0];
localparam        SP            = (SITE_CAP > 0) ? 1 : 0;
// a decoded row has n_groups <= W_SLOTS (the layer's slots were checked against W_SLOTS)
localparam        GW            = SLOT_W + 1;

reg [2:0]  state_reg;
reg [2:0]  sub_reg;                 // beat within the header / descriptor / block
reg        half_reg;                // channel record beat

// header
reg [7:0]        n_layers_reg;
reg [31:0]       total_reg;
reg [15:0]       in_base_reg;
reg [7:0]        in_mode_reg;
reg [31:0]       in_bytes_reg;
reg [15:0]       n_out_reg;
reg [7:0]        n_max_reg;
reg [7:0]        thr_reg;
reg [3:0]        c_in_reg;
reg [3:0]        pad_reg;
reg [15:0]       h0_reg, w0_reg, rs0_reg, cs0_reg, int_reg;
reg              lsites_reg;         // the current (after beat 0: previous) layer is a SITES layer

// current layer
reg [7:0]        layer_reg;
// beat index of the descriptor (in a descriptor), of the record's first beat (in a
// channel record), of a weight block's third beat (in its decode)
reg [31:0]       mark_reg;
reg              dbad_reg;           // a descriptor field is out of range
reg              dcap_reg;           // channel records exceed CH_CAP
reg              out_layer_reg;
reg              pool_reg;
reg              psites_reg;         // a POOLSITES layer (its grid is at most 64 x 64)
reg [2:0]        lq_reg;
reg [3:0]        tb_reg;
reg [15:0]       c_out_reg;
reg [CH_AW-1:0]  c_out_m1_reg;       // C_out - 1 (C_out <= CH_CAP once past the descriptor)
reg [15:0]       ics_reg;
reg [255:0]      taps_reg;

// running totals
reg [16:0]       rec_base_reg;       // first record of the layer
reg [CH_AW-1:0]  c_reg;              // channel record within the layer
reg [SLOT_W:0]   lslot_reg;          // first slot of the layer (multiple of LANES)
reg [SLOT_W:0]   lent_reg;           // slots of the layer so far (while not over)
reg              lent_over_reg;      // the layer's slots exceed W_SLOTS

// channel record beat 0
reg [31:0]       bias_reg;
reg [15:0]       m_reg;
reg [5:0]        s_reg;

// weight blocks
reg              b2_tlast_reg;       // the block's third beat carried TLAST
reg [CH_AW-1:0]  rd_row_reg;         // record whose n_groups is on chan_rd_data
reg [1:0]        tail_reg;

wire accept = s_tvalid && s_tready;
assign s_tready = (state_reg == L_HDR) || (state_reg == L_DESC) || (state_reg == L_CHAN) || (state_reg == L_BLK);

function addr_bad(input [15:0] f);
    addr_bad = (({1'b0, f} >> ADDR_W) != 17'd0);
endfunction

wire        last_layer = (layer_reg == n_layers_reg - 8'd1);

/*
 * Per-beat checks of the header, descriptor and channel records
 */
wire [7:0]  b0_flags = s_tdata[7:0];
wire [3:0]  b0_lp    = s_tdata[11:8];
wire [3:0]  b0_lq    = s_tdata[15:12];
wire [3:0]  b0_tb    = s_tdata[19:16];
wire [15:0] b0_cout  = s_tdata[47:32];
wire        b0_sites = b0_flags[`ZS_FLAG_SITES];

// the input grid's interior: in_base + pad * (row_stride + 1)
wire [15:0] rs_p1        = s_tdata[31:16] + 16'd1;
wire [19:0] pad_mul_full = {16'd0, pad_reg} * {4'd0, rs_p1};
wire [15:0] pad_mul      = pad_mul_full[15:0];

reg desc_bad;   // descriptor fields of this beat out of range

always @* begin
    desc_bad = 1'b0;
    case (sub_reg)
        3'd0: begin
            if ({1'b0, b0_lp} + {1'b0, b0_lq} != LOG2L_5) desc_bad = 1'b1;
            if (b0_cout == 16'd0) desc_bad = 1'b1;
            if (b0_flags[`ZS_FLAG_POOL] && b0_lp == 4'd0) desc_bad = 1'b1;
            if (b0_flags[`ZS_FLAG_OUT] != last_layer) desc_bad = 1'b1;
            if (b0_flags[`ZS_FLAG_OUT] && (b0_lp != 4'd0 || b0_cout != n_out_reg)) desc_bad = 1'b1;
            if (b0_tb > 4'd4) desc_bad = 1'b1;
            // reserved bits; XS2 and a per-channel input step are grid-layer features
            if (s_tdata[31:23] != 9'd0 || addr_bad(s_tdata[63:48])) desc_bad = 1'b1;
            if (b0_sites && (s_tdata[`ZS_DESC_XS2] || s_tdata[63:48] != 16'd0)) desc_bad = 1'b1;
            if (SP == 0) begin
                // sparse-pixel flags and site lists: not in this build
                if (b0_flags[7:3] != 5'd0 || s_tdata[21:20] != 2'd0) desc_bad = 1'b1;
            end else begin
                if (b0_sites && (b0_lp != 4'd0 || b0_flags[`ZS_FLAG_POOL] || b0_flags[`ZS_FLAG_OUT])) desc_bad = 1'b1;
                if (!b0_sites && (b0_flags[6:4] != 3'd0 || s_tdata[21:20] != 2'd0)) desc_bad = 1'b1;
                if (b0_flags[`ZS_FLAG_MAXRED] && b0_flags[`ZS_FLAG_AVG]) desc_bad = 1'b1;
                if (b0_flags[`ZS_FLAG_SCRUB] && !(layer_reg == 8'd0 ? in_mode_reg == 8'd2 : lsites_reg)) desc_bad = 1'b1;
                if (layer_reg == 8'd0 && in_mode_reg != 8'd0 && !b0_sites) desc_bad = 1'b1;
            end
        end
        3'd1: begin
            if (s_tdata[15:0] == 16'd0 || s_tdata[31:16] == 16'd0) desc_bad = 1'b1;
            if (pool_reg && s_tdata[0]) desc_bad = 1'b1;
            // POOLSITES: the cell map holds 64 x 64 cells
            if (SP != 0 && psites_reg && (s_tdata[15:0] > 16'd64 || s_tdata[47:32] > 16'd64)) desc_bad = 1'b1;
            if (out_layer_reg && (s_tdata[15:0] != 16'd1 || s_tdata[31:16] != 16'd1)) desc_bad = 1'b1;
            if (addr_bad(s_tdata[63:48])) desc_bad = 1'b1;
        end
        3'd2: begin
            if (addr_bad(s_tdata[15:0]) || addr_bad(s_tdata[31:16]) ||
                addr_bad(s_tdata[47:32]) || addr_bad(s_tdata[63:48])) desc_bad = 1'b1;
        end
        3'd3: begin
            if (addr_bad(s_tdata[15:0]) || addr_bad(s_tdata[31:16])) desc_bad = 1'b1;
            if ({1'b0, s_tdata[63:32]} > ACT_BYTES_33) desc_bad = 1'b1;
        end
        default: ;
    endcase
end

// n_groups >= 2^GW (> W_SLOTS) is over on its own; below, the sums fit in SW2 bits
localparam       SW2       = GW + 9;
wire             ng_big    = (s_tdata[23:GW] != {(24-GW){1'b0}});
wire [SW2-1:0]   ch_slots  = {9'd0, s_tdata[GW-1:0]} << lq_reg;
// slots of the layer so far; once past W_SLOTS only the overflow flag matters
wire [SW2-1:0]   lent_next = {{(SW2-SLOT_W-1){1'b0}}, lent_reg} + ch_slots;
wire [SW2-1:0]   slot_end  = {{(SW2-SLOT_W-1){1'b0}}, lslot_reg} + lent_next;
wire             slot_over = lent_over_reg || ng_big || (slot_end > W_SLOTS_32[SW2-1:0]);
wire        last_rec   = (c_reg == c_out_m1_reg);

wire [32:0] hdr_slots  = {1'b0, s_tdata[31:0]};
wire        hdr_cap    = (n_layers_reg == 8'd0) || (n_layers_reg > MAX_LAYERS_8) ||
                         (hdr_slots > W_SLOTS_33) || ({1'b0, s_tdata[47:32]} > CH_CAP_17) ||
                         (n_out_reg > OUT_CAP_16) || (n_out_reg == 16'd0) || (s_tdata[63:48] > LOG2_ACT_16);
wire        hdr_inbad  = addr_bad(in_base_reg) || (in_bytes_reg == 32'd0) || ({1'b0, in_bytes_reg} > ACT_BYTES_33);

/*
 * Weight-block decode (state L_DEC, one stream entry per cycle) and the entry
 * pipeline to the weight store: zs_block_decode
 */
wire        dec = (state_reg == L_DEC);
wire        row_start;
wire        layer_end;
wire        dec_end;

/*
 * Errors: the first failing check in program order; err_idx picks one of a few
 * beat indices (the current beat, a header beat, the descriptor, the record, ...)
 */
localparam [2:0]
    IX_BEAT = 3'd0,
    IX_ONE  = 3'd1,
    IX_TWO  = 3'd2,
    IX_HDR3 = 3'd3,
    IX_DESC = 3'd4,
    IX_REC  = 3'd5,
    IX_NEXT = 3'd6,
    IX_B2   = 3'd7;

reg [2:0] isel;

always @* begin
    err = 1'b0;
    err_code = 8'd0;
    isel = IX_BEAT;
    if (accept) begin
        case (state_reg)
            L_HDR: begin
                if (sub_reg == 3'd0 && s_tdata[31:0] != `ZS_PROGRAM_MAGIC) begin
                    err = 1'b1; err_code = `ZS_ERR_BAD_MAGIC;
                end else if (sub_reg == 3'd0 && s_tdata[47:32] != `ZS_FORMAT_VERSION) begin
                    err = 1'b1; err_code = `ZS_ERR_BAD_VERSION;
                end else if (sub_reg == 3'd0 && s_tdata[55:48] != LANES_8) begin
                    err = 1'b1; err_code = `ZS_ERR_CONFIG_MISMATCH;
                end else if (sub_reg == 3'd3 && hdr_cap) begin
                    err = 1'b1; err_code = `ZS_ERR_CAPACITY; isel = IX_HDR3;
                end else if (sub_reg == 3'd3 && hdr_inbad) begin
                    err = 1'b1; err_code = `ZS_ERR_BAD_LAYER; isel = IX_TWO;
                end else if (sub_reg == 3'd3 && in_mode_reg > 8'd2) begin
                    err = 1'b1; err_code = `ZS_ERR_BAD_LAYER; isel = IX_ONE;
                end else if (sub_reg == 3'd3 && in_mode_reg != 8'd0 &&
                             (n_max_reg == 8'd0 || {1'b0, n_max_reg} > SITE_CAP_9)) begin
                    err = 1'b1; err_code = `ZS_ERR_CAPACITY; isel = IX_ONE;
                end else if (sub_reg == 3'd3 && in_mode_reg != 8'd0 &&
                             ((in_mode_reg == 8'd1 && c_in_reg != 4'd1) || c_in_reg == 4'd0 || c_in_reg > 4'd6)) begin
                    err = 1'b1; err_code = `ZS_ERR_BAD_LAYER; isel = IX_TWO;
                end else if (s_tlast) begin
                    err = 1'b1; err_code = `ZS_ERR_TRUNCATED;
                end
            end
            L_DESC: begin
                if (sub_reg == 3'd7 && dbad_reg) begin
                    err = 1'b1; err_code = `ZS_ERR_BAD_LAYER; isel = IX_DESC;
                end else if (sub_reg == 3'd7 && dcap_reg) begin
                    err = 1'b1; err_code = `ZS_ERR_CAPACITY; isel = IX_DESC;
                end else if (s_tlast) begin
                    err = 1'b1; err_code = `ZS_ERR_TRUNCATED;
                end
            end
            L_CHAN: begin
                if (half_reg && (s_tdata[23:0] == 24'd0 || (!out_layer_reg && (s_reg == 6'd0 || s_reg > 6'd47)))) begin
                    err = 1'b1; err_code = `ZS_ERR_BAD_LAYER; isel = IX_REC;
                end else if (half_reg && last_rec && slot_over) begin
                    err = 1'b1; err_code = `ZS_ERR_CAPACITY; isel = IX_NEXT;
                end else if (s_tlast) begin
                    err = 1'b1; err_code = `ZS_ERR_TRUNCATED;
                end
            end
            L_BLK: begin
                // the third beat's TLAST is judged after its decode
                if (sub_reg != 3'd2 && s_tlast) begin
                    err = 1'b1; err_code = `ZS_ERR_TRUNCATED;
                end
            end
            default: ;
        endcase
    end else if (dec_end) begin
        isel = IX_B2;
        if (layer_end && last_layer) begin
            if (beat_idx != total_reg) begin   // beat_idx = index of the third beat + 1
                err = 1'b1; err_code = `ZS_ERR_BAD_LAYER; isel = IX_ONE;
            end else if (!b2_tlast_reg) begin
                err = 1'b1; err_code = `ZS_ERR_TOO_LONG;
            end
        end else if (b2_tlast_reg) begin
            err = 1'b1; err_code = `ZS_ERR_TRUNCATED;
        end
    end
end

always @* begin
    case (isel)
        IX_ONE:  err_idx = 32'd1;
        IX_TWO:  err_idx = 32'd2;
        IX_HDR3: err_idx = 32'd3;
        IX_DESC: err_idx = mark_reg;
        IX_REC:  err_idx = mark_reg;
        IX_NEXT: err_idx = beat_idx_p1;
        IX_B2:   err_idx = mark_reg;
        default: err_idx = beat_idx;
    endcase
end

wire good = accept && !err;

/*
 * Channel record RAM read-back: n_groups of the next row to start
 */
reg [CH_AW-1:0] rd_row_next;

always @* begin
    rd_row_next = rd_row_reg;
    if (state_reg == L_CHAN && good && half_reg && last_rec) begin
        rd_row_next = rec_base_reg[CH_AW-1:0];
    end else if (dec && row_start) begin
        rd_row_next = rd_row_reg + {{(CH_AW-1){1'b0}}, 1'b1};
    end
end

assign chan_rd_en   = 1'b1;
assign chan_rd_addr = rd_row_next;

// the parser's registers change only in cycles without reset, start or error
wire run = !rst && !start && !err;

zs_block_decode #(
    .LANES(LANES),
    .W_SLOTS(W_SLOTS),
    .CH_CAP(CH_CAP)
)
block_decode_inst (
    .clk(clk),
    .rst(rst),
    .start(start),
    .blk_data(s_tdata),
    .load_codes(run && state_reg == L_BLK && accept && sub_reg == 3'd0),
    .load_wts_lo(run && state_reg == L_BLK && accept && sub_reg == 3'd1),
    .load_wts_hi(run && state_reg == L_BLK && accept && sub_reg != 3'd0 && sub_reg != 3'd1),
    .row_init(run && state_reg == L_CHAN && accept && half_reg && last_rec),
    .first_slot(lslot_reg[SLOT_W-1:0]),
    .c_out_m1(c_out_m1_reg),
    .lq(lq_reg),
    .tb(tb_reg),
    .ics(ics_reg),
    .taps(taps_reg),
    .rd_ng(chan_rd_data[54 +: GW]),
    .dec(dec),
    .step(run && dec),
    .row_start(row_start),
    .layer_end(layer_end),
    .dec_end(dec_end),
    .ws_we(ws_we),
    .ws_waddr(ws_waddr),
    .ws_wentry(ws_wentry)
);

/*
 * Memory writes from beats
 */
assign desc_waddr = {layer_reg[LAYER_W-1:0], sub_reg[1:0]};
assign desc_wdata = s_tdata;
assign chan_waddr = rec_base_reg[CH_AW-1:0] + c_reg;
assign chan_wdata = {lslot_reg[SLOT_W-1:0] + lent_reg[SLOT_W-1:0], s_tdata[23:0], s_reg, m_reg, bias_reg};

always @* begin
    desc_we = good && (state_reg == L_DESC) && !sub_reg[2];
    chan_we = good && (state_reg == L_CHAN) && half_reg;
end

/*
 * Parser state
 */
localparam [31:0]     LANES_M1_32 = LANES - 1;
localparam [SLOT_W:0] LANES_M1    = LANES_M1_32[SLOT_W:0];
wire [SLOT_W:0] lslot_end  = lslot_reg + lent_reg[SLOT_W:0] + LANES_M1;
wire [SLOT_W:0] next_lslot = {lslot_end[SLOT_W:LOG2L], {LOG2L{1'b0}}};

always @(posedge clk) begin
    rd_row_reg <= rd_row_next;
    if (rst) begin
        state_reg <= L_IDLE;
    end else if (start) begin
        state_reg <= L_HDR;
        sub_reg <= 3'd0;
        layer_reg <= 8'd0;
        rec_base_reg <= 17'd0;
        lslot_reg <= {(SLOT_W+1){1'b0}};
        n_layers_reg <= 8'd0;
        total_reg <= 32'd0;
        in_base_reg <= 16'd0;
        in_mode_reg <= 8'd0;
        in_bytes_reg <= 32'd0;
        n_out_reg <= 16'd0;
    end else if (err) begin
        state_reg <= L_IDLE;
    end else begin
        case (state_reg)
            L_HDR: if (accept) begin
                sub_reg <= sub_reg + 3'd1;
                case (sub_reg)
                    3'd0: n_layers_reg <= s_tdata[63:56];
                    3'd1: begin
                        total_reg <= s_tdata[31:0];
                        in_base_reg <= s_tdata[47:32];
                        in_mode_reg <= s_tdata[55:48];
                        n_max_reg <= s_tdata[63:56];
                    end
                    3'd2: begin
                        in_bytes_reg <= s_tdata[31:0];
                        n_out_reg <= s_tdata[47:32];
                        thr_reg <= s_tdata[55:48];
                        c_in_reg <= s_tdata[59:56];
                        pad_reg <= s_tdata[63:60];
                    end
                    default: begin
                        state_reg <= L_DESC;
                        sub_reg <= 3'd0;
                    end
                endcase
            end
            L_DESC: if (accept) begin
                sub_reg <= sub_reg + 3'd1;
                dbad_reg <= dbad_reg || desc_bad;
                case (sub_reg)
                    3'd0: begin
                        mark_reg <= beat_idx;
                        dbad_reg <= desc_bad;
                        lsites_reg <= b0_sites;
                        dcap_reg <= (rec_base_reg + {1'b0, b0_cout}) > CH_CAP_17;
                        out_layer_reg <= b0_flags[`ZS_FLAG_OUT];
                        pool_reg <= b0_flags[`ZS_FLAG_POOL];
                        psites_reg <= b0_flags[`ZS_FLAG_POOLSITES];
                        lq_reg <= b0_lq[2:0];
                        tb_reg <= b0_tb;
                        c_out_reg <= b0_cout;
                        c_out_m1_reg <= b0_cout[CH_AW-1:0] - {{(CH_AW-1){1'b0}}, 1'b1};
                    end
                    3'd1: begin
                        ics_reg <= s_tdata[63:48];
                        if (SP != 0 && layer_reg == 8'd0) begin
                            h0_reg <= s_tdata[15:0];
                            w0_reg <= s_tdata[47:32];
                            cs0_reg <= s_tdata[63:48];
                        end
                    end
                    3'd2: begin
                        if (SP != 0 && layer_reg == 8'd0) begin
                            rs0_reg <= s_tdata[31:16];
                            int_reg <= in_base_reg + pad_mul;
                        end
                    end
                    3'd4: taps_reg[63:0] <= s_tdata;
                    3'd5: taps_reg[127:64] <= s_tdata;
                    3'd6: taps_reg[191:128] <= s_tdata;
                    3'd7: begin
                        taps_reg[255:192] <= s_tdata;
                        state_reg <= L_CHAN;
                        half_reg <= 1'b0;
                        c_reg <= {CH_AW{1'b0}};
                        lent_reg <= {(SLOT_W+1){1'b0}};
                        lent_over_reg <= 1'b0;
                    end
                    default: ;
                endcase
            end
            L_CHAN: if (accept) begin
                half_reg <= !half_reg;
                if (!half_reg) begin
                    mark_reg <= beat_idx;
                    bias_reg <= s_tdata[31:0];
                    m_reg <= s_tdata[47:32];
                    s_reg <= s_tdata[53:48];
                end else begin
                    lent_reg <= lent_next[SLOT_W:0];
                    lent_over_reg <= slot_over;
                    c_reg <= c_reg + {{(CH_AW-1){1'b0}}, 1'b1};
                    if (last_rec) begin
                        state_reg <= L_BLK;
                        sub_reg <= 3'd0;
                    end
                end
            end
            L_BLK: if (accept) begin
                sub_reg <= sub_reg + 3'd1;
                case (sub_reg)
                    3'd0, 3'd1: ;   // run codes, weights 0-7 (zs_block_decode)
                    default: begin
                        // weights 8-15 (zs_block_decode)
                        b2_tlast_reg <= s_tlast;   // (mark_reg: its index)
                        mark_reg <= beat_idx;
                        state_reg <= L_DEC;
                    end
                endcase
            end
            L_DEC: begin
                if (dec_end) begin
                    sub_reg <= 3'd0;
                    if (layer_end) begin
                        state_reg <= L_TAIL;
                        tail_reg <= 2'd0;
                    end else begin
                        state_reg <= L_BLK;
                    end
                end
            end
            L_TAIL: begin
                // let the last entries reach the weight store
                tail_reg <= tail_reg + 2'd1;
                if (tail_reg == 2'd1) begin
                    if (last_layer) begin
                        state_reg <= L_DONE;
                    end else begin
                        state_reg <= L_DESC;
                        sub_reg <= 3'd0;
                        layer_reg <= layer_reg + 8'd1;
                        rec_base_reg <= rec_base_reg + {1'b0, c_out_reg};
                        lslot_reg <= next_lslot;
                    end
                end
            end
            L_DONE: state_reg <= L_IDLE;
            default: ;
        endcase
    end
end

assign done = (state_reg == L_DONE);

assign prog_n_layers = n_layers_reg;
assign prog_in_base  = in_base_reg[ADDR_W-1:0];
assign prog_in_bytes = in_bytes_reg[16:0];
assign prog_n_out    = n_out_reg;
assign prog_in_mode  = (SP != 0) ? in_mode_reg[1:0] : 2'd0;
assign prog_n_max    = n_max_reg;
assign prog_thr      = thr_reg;
assign prog_c_in     = c_in_reg;
assign prog_pad      = pad_reg;
assign prog_h0       = (SP != 0) ? h0_reg : 16'd0;   // first-layer grid: sparse-pixel mode only
assign prog_w0       = (SP != 0) ? w0_reg : 16'd0;
assign prog_rs0      = (SP != 0) ? rs0_reg[ADDR_W-1:0] : {ADDR_W{1'b0}};
assign prog_cs0      = (SP != 0) ? cs0_reg[ADDR_W-1:0] : {ADDR_W{1'b0}};
assign prog_interior = (SP != 0) ? int_reg[ADDR_W-1:0] : {ADDR_W{1'b0}};

// reserved / sparse-pixel header fields
wire unused_ok = &{1'b0, b0_flags[0], chan_rd_data, lslot_end[LOG2L-1:0],
                   in_base_reg, in_bytes_reg[31:17], in_mode_reg[7:2], pad_mul_full[19:16], rs0_reg, cs0_reg, int_reg, lent_next[SW2-1:SLOT_W+1], slot_end[SW2-1:SLOT_W+1]};

endmodule

`resetall
