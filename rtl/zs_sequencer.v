// zs_sequencer.v: walks the loaded program, one image at a time.
//
// For each layer: SETUP (LAYER_SETUP cycles: fetch the descriptor, prefetch
// the first channel records), CLEAR (ceil(clear_len / LANES) cycles, LANES
// bytes per cycle), ISSUE (one P x Q tile per cycle, no bubbles), FILL (FILL
// cycles, until the layer's last write). Issue order (docs/hardware.md,
// "Iteration order of a layer"):
//
//   for c in channels: for tile (y, x0) in tiles: for g in groups(c): issue
//
// Channel records stream through a 4-entry prefetch FIFO (zs_rec_fifo) so that a
// channel change costs no cycle, even when every channel has a single issue.
//
// Sparse-pixel mode (SITE_CAP > 0, docs/hardware.md "Sparse-pixel mode"): the
// descriptor words are read in the order 0, 3, 1, 2 and the layer runs
//
//   SETUP 0-3 | CLEAR | POOL (POOLSITES: n_in cycles) | SETUP 4-5 | ISSUE | FILL | SCRUB
//
// A POOLSITES build (zs_sites) starts in SETUP cycle 1 and is complete before
// SETUP 4, whose two cycles prime the site stream. A SITES layer iterates
//   for c in channels: for site in list: for g in groups(c): issue
// with the site's read / write offsets from the site stream. SCRUB (C_prev x
// n_prev cycles after FILL, the stream primed in FILL's last two cycles) writes
// 0 at the previous producer's sites, one byte per cycle.

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

`include "zs_contract.vh"

module zs_sequencer #
(
    // MAC lanes: 4, 8, 16 or 32
    parameter LANES       = 8,
    // Activation memory bytes
    parameter ACT_BYTES   = 65536,
    // Weight-store entries
    parameter W_SLOTS     = 65536,
    // Channel records
    parameter CH_CAP      = 2048,
    // Layer descriptors
    parameter MAX_LAYERS  = 32,
    // Cycles of the SETUP phase (at least 6)
    parameter LAYER_SETUP = `ZS_T_LAYER_SETUP,
    // Cycles of the FILL phase (the datapath's issue-to-write latency, 11)
    parameter FILL        = `ZS_T_FILL,
    // Entries per site list (0: no sparse-pixel mode)
    parameter SITE_CAP    = 64
)
(
    input  wire                   clk,
    input  wire                   rst,

    /*
     * Control
     */
    input  wire                   start,
    input  wire [7:0]             n_layers,
    output wire                   done,
    output wire                   active,

    /*
     * Sparse-pixel input: the input grid as the first layer's producer (SCRUB) and
     * list A appends of the input phase
     */
    input  wire [ADDR_W-1:0]      in_interior,
    input  wire [ADDR_W-1:0]      in_rs,
    input  wire [ADDR_W-1:0]      in_cs,
    input  wire [3:0]             in_c,
    input  wire                   lists_clear,
    input  wire                   app_valid,
    input  wire [7:0]             app_y,
    input  wire [7:0]             app_x,
    output wire [SW_LW-1:0]       len_a,

    /*
     * Layer descriptor RAM (4 words per layer: descriptor beats 0-3)
     */
    output wire                   desc_rd_en,
    output wire [LAYER_W+1:0]     desc_rd_addr,
    input  wire [63:0]            desc_rd_data,

    /*
     * Channel record RAM: {first_slot, n_groups[23:0], S[5:0], M[15:0], bias[31:0]}
     */
    output wire                   chan_rd_en,
    output wire [CH_AW-1:0]       chan_rd_addr,
    input  wire [CHAN_W-1:0]      chan_rd_data,

    /*
     * Weight store read
     */
    output wire                   ws_rd_en,
    output wire [WS_AW-1:0]       ws_rd_addr,

    /*
     * Layer configuration for the datapath
     */
    output wire [2:0]             cfg_log2q,
    output wire [2:0]             cfg_log2p,
    output wire                   cfg_relu,
    output wire                   cfg_pool,
    output wire                   cfg_out,
    output wire                   cfg_maxred,
    output wire                   cfg_xs2,
    output wire                   layer_start,

    /*
     * Issue (stage 0)
     */
    output wire                   iss_valid,
    output wire                   iss_first,
    output wire                   iss_last,
    output wire [LOG2L-1:0]       iss_sub,
    output wire [ADDR_W-1:0]      iss_base,
    output reg  [LANES-1:0]       iss_vmask,
    output wire [31:0]            iss_bias,
    output wire [15:0]            iss_m,
    output wire [5:0]             iss_s,
    output wire                   iss_ph,
    output wire [ADDR_W-1:0]      iss_wr_addr,

    /*
     * Layer clear: write request of zeros
     */
    output reg  [LANES-1:0]       clr_en,
    output wire [ADDR_W-1:0]      clr_addr
);

localparam LOG2L   = $clog2(LANES);
localparam ADDR_W  = $clog2(ACT_BYTES);
localparam SLOT_W  = $clog2(W_SLOTS);
localparam WS_AW   = (W_SLOTS / LANES > 1) ? $clog2(W_SLOTS / LANES) : 1;
localparam CH_AW   = (CH_CAP > 1) ? $clog2(CH_CAP) : 1;
localparam LAYER_W = (MAX_LAYERS > 1) ? $clog2(MAX_LAYERS) : 1;
localparam CHAN_W  = 32 + 16 + 6 + 24 + SLOT_W;
localparam SW_LW   = (SITE_CAP > 1) ? $clog2(SITE_CAP) + 1 : 1;

initial begin
    if (LAYER_SETUP < 6) begin
        $error("zs_sequencer: LAYER_SETUP must be at least 6 (instance %m)");
        $finish;
    end
    if (FILL < 11) begin
        $error("zs_sequencer: FILL must cover the datapath latency of 11 cycles (instance %m)");
        $finish;
    end
end

localparam [2:0]
    PH_IDLE  = 3'd0,
    PH_SETUP = 3'd1,
    PH_CLEAR = 3'd2,
    PH_ISSUE = 3'd3,
    PH_FILL  = 3'd4,
    PH_POOL  = 3'd5,
    PH_SCRUB = 3'd6;

localparam SP = (SITE_CAP > 0) ? 1 : 0;   // sparse-pixel mode built in

reg [2:0]         phase_reg;
reg [7:0]         cnt_reg;           // SETUP / FILL cycle counter
reg [LAYER_W-1:0] layer_reg;
reg [CH_AW-1:0]   rec_base_reg;

// descriptor beats 0-3 of the current layer
reg [63:0] d0_reg, d1_reg, d2_reg, d3_reg;

wire        f_relu     = d0_reg[`ZS_FLAG_RELU];
wire        f_pool     = d0_reg[`ZS_FLAG_POOL];
wire        f_out      = d0_reg[`ZS_FLAG_OUT];
wire        f_sites    = (SP != 0) && d0_reg[`ZS_FLAG_SITES];
wire        f_maxred   = (SP != 0) && d0_reg[`ZS_FLAG_MAXRED];
wire        f_avg      = (SP != 0) && d0_reg[`ZS_FLAG_AVG];
wire        f_psites   = (SP != 0) && d0_reg[`ZS_FLAG_POOLSITES];
wire        f_scrub    = (SP != 0) && d0_reg[`ZS_FLAG_SCRUB];
wire        in_list    = d0_reg[20];
wire        out_list   = d0_reg[21];
wire        f_xs2      = d0_reg[`ZS_DESC_XS2];
wire [15:0] in_cstep   = d0_reg[63:48];
wire [2:0]  log2p      = d0_reg[10:8];
wire [2:0]  log2q      = d0_reg[14:12];
wire [15:0] c_out      = d0_reg[47:32];
wire [15:0] h_it       = d1_reg[15:0];
wire [15:0] n_xt       = d1_reg[31:16];
wire [15:0] w_valid    = d1_reg[47:32];
wire [15:0] in_base    = d2_reg[15:0];
wire [15:0] in_rstride = d2_reg[31:16];
wire [15:0] out_base   = d2_reg[47:32];
wire [15:0] out_rstride= d2_reg[63:48];
wire [15:0] out_cstride= d3_reg[15:0];
wire [15:0] clear_base = d3_reg[31:16];
wire [16:0] clear_len  = d3_reg[48:32];

wire last_layer = ({{(8-LAYER_W){1'b0}}, layer_reg} == n_layers - 8'd1);

/*
 * Descriptor fetch: words 0, 3, 1, 2 in SETUP cycles 0-3, each captured the cycle after
 */
reg [1:0] dword;
reg [2:0] dcap_reg;      // {valid, word} of the read issued last cycle

always @* begin
    case (cnt_reg[1:0])
        2'd0: dword = 2'd0;
        2'd1: dword = 2'd3;
        2'd2: dword = 2'd1;
        default: dword = 2'd2;
    endcase
end

wire desc_rd = (phase_reg == PH_SETUP) && (cnt_reg < 8'd4);

/*
 * Channel record prefetch FIFO
 */
localparam [31:0]      LANES_32  = LANES;
localparam [16:0]      LANES_17  = LANES_32[16:0];

wire setup_first = (phase_reg == PH_SETUP) && (cnt_reg == 8'd0);
reg  pop;
wire [CHAN_W-1:0] head;

zs_rec_fifo #(
    .W_SLOTS(W_SLOTS),
    .CH_CAP(CH_CAP)
)
rec_fifo_inst (
    .clk(clk),
    .rst(rst),
    .flush(setup_first),
    .base(rec_base_reg),
    .fetch_en((phase_reg == PH_SETUP) || (phase_reg == PH_ISSUE)),
    .pop(pop),
    .head(head),
    .chan_rd_en(chan_rd_en),
    .chan_rd_addr(chan_rd_addr),
    .chan_rd_data(chan_rd_data)
);

/*
 * Site lists
 */
reg setup_first_d;   // SETUP cycle 1: descriptor word 0 on desc_rd_data

always @(posedge clk) begin
    setup_first_d <= setup_first;
end

wire               st_reset, st_adv;
wire               scrub_ph = (phase_reg == PH_FILL) || (phase_reg == PH_SCRUB);
wire [SW_LW-1:0]   st_len;
wire [SW_LW-1:0]   b_n_in;
wire [ADDR_W-1:0]  st_off1, st_off2;
wire [2:0]         st_n;

// previous producer (SCRUB): base, channel and row strides, channels, list
reg [ADDR_W-1:0]   p_base_reg, p_cs_reg, p_rs_reg;
reg [15:0]         p_nch_reg;
reg                p_list_reg;

wire st_list = scrub_ph ? p_list_reg : (f_psites ? out_list : in_list);
wire [15:0] st_rs1 = scrub_ph ? {{(16-ADDR_W){1'b0}}, p_rs_reg} : in_rstride;

generate
if (SP != 0) begin : g_sites
    zs_sites #(
        .SITE_CAP(SITE_CAP),
        .ADDR_W(ADDR_W)
    )
    sites_inst (
        .clk(clk),
        .rst(rst),
        .lists_clear(lists_clear),
        .app_valid(app_valid),
        .app_y(app_y),
        .app_x(app_x),
        .len_a(len_a),
        .b_start(setup_first_d && desc_rd_data[`ZS_FLAG_SITES] && desc_rd_data[`ZS_FLAG_POOLSITES]),
        .b_in_list(desc_rd_data[20]),
        .b_out_list(desc_rd_data[21]),
        .b_h(h_it),
        .b_w(w_valid),
        .b_n_in(b_n_in),
        .st_reset(st_reset),
        .st_adv(st_adv),
        .st_list(st_list),
        .st_sh(f_psites && !scrub_ph),
        .st_rs1(st_rs1),
        .st_rs2(out_rstride),
        .st_len(st_len),
        .st_off1(st_off1),
        .st_off2(st_off2),
        .st_n(st_n)
    );
end else begin : g_no_sites
    assign len_a = {SW_LW{1'b0}};
    assign b_n_in = {SW_LW{1'b0}};
    assign st_len = {SW_LW{1'b0}};
    assign st_off1 = {ADDR_W{1'b0}};
    assign st_off2 = {ADDR_W{1'b0}};
    assign st_n = 3'd0;
    wire unused_sites = &{1'b0, lists_clear, app_valid, app_y, app_x, st_reset, st_adv, st_list, st_rs1,
                          in_interior, in_rs, in_cs, in_c, p_base_reg, p_cs_reg, p_rs_reg, p_nch_reg,
                          setup_first_d, h_it, w_valid, out_rstride, desc_rd_data[21:20]};
end
endgenerate

/*
 * Issue state
 */
reg [31:0]       bias_reg;
reg [15:0]       m_reg;
reg [5:0]        s_reg;
// n_groups <= W_SLOTS (the loader refuses a layer whose slots exceed W_SLOTS)
localparam GW = SLOT_W + 1;
reg [GW-1:0]     ng_reg;       // n_groups of the current channel
reg [SLOT_W-1:0] fs_reg;   // first slot of the current channel

reg [15:0]       c_reg;        // channel
reg [GW-1:0]     g_reg;        // groups left in the tile
reg [SLOT_W-1:0] slot_reg;
reg [15:0]       t_reg;        // tile within the row (SITES: site)
reg              ph_reg;        // pool phase: 0 even row, 1 odd row
reg [15:0]       yo_reg;       // output row (pool: pooled row)
reg [16:0]       x0_reg;
reg [21:0]       remx_reg;     // w_valid - x0 (signed)
reg [ADDR_W-1:0] row_in_reg;   // in_ch + y_even * in_row_stride
reg [ADDR_W-1:0] in_ch_reg;    // in_base + c * in_c_step
reg [ADDR_W-1:0] out_ch_reg;   // out_base + c * out_ch_stride
reg [ADDR_W-1:0] out_row_reg;  // out_ch + yo * out_row_stride
reg [16:0]       clr_rem_reg;
reg [ADDR_W-1:0] clr_addr_reg;
reg [SW_LW-1:0]  pcnt_reg;     // POOL cycles left
reg [SW_LW-1:0]  sc_s_reg;     // SCRUB: site
reg [15:0]       sc_c_reg;     // SCRUB: channel
reg [ADDR_W-1:0] sc_base_reg;  // SCRUB: p_base + channel * p_cs

wire [15:0] yo_n     = f_pool ? {1'b0, h_it[15:1]} : h_it;
wire [ADDR_W-1:0] row_step = f_pool ? {in_rstride[ADDR_W-2:0], 1'b0} : in_rstride[ADDR_W-1:0];
wire [SLOT_W-1:0] q_step   = {{(SLOT_W-1){1'b0}}, 1'b1} << log2q;
wire [16:0] p_step   = 17'd1 << log2p;

// last values of the loop counters, registered at the end of SETUP
reg [15:0] t_end_reg;
reg [15:0] yo_end_reg;
reg [15:0] c_end_reg;
reg        first_reg;          // first group of the tile

wire g_last    = (g_reg == {{(GW-1){1'b0}}, 1'b1});   // g_reg counts the groups left
wire t_last    = (t_reg == t_end_reg);
wire yo_last   = (yo_reg == yo_end_reg);
wire tile_last = yo_last && t_last && (!f_pool || ph_reg);
wire c_last    = (c_reg == c_end_reg);

wire [31:0]       h_bias = head[31:0];
wire [15:0]       h_m    = head[47:32];
wire [5:0]        h_s    = head[53:48];
wire [GW-1:0]     h_ng   = head[54 +: GW];
wire [SLOT_W-1:0] h_fs   = head[78 +: SLOT_W];

localparam [7:0] SETUP_LAST = LAYER_SETUP - 1;
localparam [7:0] FILL_LAST  = FILL - 1;

wire setup_pre  = (phase_reg == PH_SETUP) && (cnt_reg == 8'd3);
wire setup_last = (phase_reg == PH_SETUP) && (cnt_reg == SETUP_LAST);
wire issue_end  = (phase_reg == PH_ISSUE) && g_last && tile_last && c_last;
wire fill_last  = (phase_reg == PH_FILL) && (cnt_reg == FILL_LAST);
wire no_sites   = f_sites && (st_len == {SW_LW{1'b0}});
wire pool_go    = f_psites && (b_n_in != {SW_LW{1'b0}});
wire clear_end  = (phase_reg == PH_CLEAR) && (clr_rem_reg <= LANES_17);
wire pool_end   = (phase_reg == PH_POOL) && (pcnt_reg == {{(SW_LW-1){1'b0}}, 1'b1});
wire scrub_go   = f_scrub && (st_len != {SW_LW{1'b0}});
wire sc_s_last  = ({{(16-SW_LW){1'b0}}, sc_s_reg} == {{(16-SW_LW){1'b0}}, st_len} - 16'd1);
wire scrub_end  = (phase_reg == PH_SCRUB) && sc_s_last && (sc_c_reg == p_nch_reg - 16'd1);
wire layer_end  = (fill_last && !scrub_go) || scrub_end;


// site stream: primed in the last two SETUP cycles (and FILL cycles, for SCRUB),
// advanced on every new site
assign st_reset = setup_pre || ((phase_reg == PH_FILL) && cnt_reg == 8'd0);
assign st_adv   = ((phase_reg == PH_SETUP) && cnt_reg >= SETUP_LAST - 8'd1) ||
                  ((phase_reg == PH_FILL) && cnt_reg >= FILL_LAST - 8'd1) ||
                  ((phase_reg == PH_ISSUE) && g_last) || (phase_reg == PH_SCRUB);

always @* begin
    pop = setup_last || ((phase_reg == PH_ISSUE) && g_last && tile_last && !c_last);
end

always @(posedge clk) begin
    // descriptor fetch: word dword in SETUP cycle 0-3, data in the cycle after
    dcap_reg <= {desc_rd, dword};
    if (dcap_reg[2]) begin
        case (dcap_reg[1:0])
            2'd0: d0_reg <= desc_rd_data;
            2'd1: d1_reg <= desc_rd_data;
            2'd2: d2_reg <= desc_rd_data;
            default: d3_reg <= desc_rd_data;
        endcase
    end

    if (setup_last) begin
        t_end_reg <= f_sites ? {{(16-SW_LW){1'b0}}, st_len} - 16'd1 : n_xt - 16'd1;
        yo_end_reg <= f_sites ? 16'd0 : yo_n - 16'd1;
        c_end_reg <= c_out - 16'd1;
    end

    // start of a channel: first issue state
    if (setup_last || pop) begin
        bias_reg <= (f_maxred || f_avg) ? 32'd0 : h_bias;
        m_reg <= h_m;
        s_reg <= h_s;
        ng_reg <= h_ng;
        fs_reg <= h_fs;
        g_reg <= h_ng;
        first_reg <= 1'b1;
        slot_reg <= h_fs;
        t_reg <= 16'd0;
        ph_reg <= 1'b0;
        yo_reg <= 16'd0;
        x0_reg <= 17'd0;
        remx_reg <= {6'd0, w_valid};
        if (setup_last) begin
            in_ch_reg <= in_base[ADDR_W-1:0];
            row_in_reg <= in_base[ADDR_W-1:0];
            c_reg <= 16'd0;
            out_ch_reg <= out_base[ADDR_W-1:0];
            out_row_reg <= out_base[ADDR_W-1:0];
        end else begin
            in_ch_reg <= in_ch_reg + in_cstep[ADDR_W-1:0];
            row_in_reg <= in_ch_reg + in_cstep[ADDR_W-1:0];
            c_reg <= c_reg + 16'd1;
            out_ch_reg <= out_ch_reg + out_cstride[ADDR_W-1:0];
            out_row_reg <= out_ch_reg + out_cstride[ADDR_W-1:0];
        end
    end else if (phase_reg == PH_ISSUE) begin
        if (!g_last) begin
            g_reg <= g_reg - {{(GW-1){1'b0}}, 1'b1};
            first_reg <= 1'b0;
            slot_reg <= slot_reg + q_step;
        end else begin
            g_reg <= ng_reg;
            first_reg <= 1'b1;
            slot_reg <= fs_reg;
            if (f_pool && !ph_reg) begin
                ph_reg <= 1'b1;
            end else begin
                ph_reg <= 1'b0;
                if (t_last) begin
                    t_reg <= 16'd0;
                    x0_reg <= 17'd0;
                    remx_reg <= {6'd0, w_valid};
                    yo_reg <= yo_reg + 16'd1;
                    row_in_reg <= row_in_reg + row_step;
                    out_row_reg <= out_row_reg + out_rstride[ADDR_W-1:0];
                end else begin
                    t_reg <= t_reg + 16'd1;
                    x0_reg <= x0_reg + p_step;
                    remx_reg <= remx_reg - {5'd0, p_step};
                end
            end
        end
    end

    if (setup_pre) begin
        clr_rem_reg <= clear_len;
        clr_addr_reg <= clear_base[ADDR_W-1:0];
        pcnt_reg <= b_n_in;
    end else if (phase_reg == PH_CLEAR) begin
        clr_rem_reg <= clr_rem_reg - LANES_17;
        clr_addr_reg <= clr_addr_reg + LANES_17[ADDR_W-1:0];
    end else if (phase_reg == PH_POOL) begin
        pcnt_reg <= pcnt_reg - {{(SW_LW-1){1'b0}}, 1'b1};
    end

    // SCRUB loop
    if (phase_reg != PH_SCRUB) begin
        sc_s_reg <= {SW_LW{1'b0}};
        sc_c_reg <= 16'd0;
        sc_base_reg <= p_base_reg;
    end else if (sc_s_last) begin
        sc_s_reg <= {SW_LW{1'b0}};
        sc_c_reg <= sc_c_reg + 16'd1;
        sc_base_reg <= sc_base_reg + p_cs_reg;
    end else begin
        sc_s_reg <= sc_s_reg + {{(SW_LW-1){1'b0}}, 1'b1};
    end

    // previous producer: the input grid at the start, a SITES layer's output after it
    if (start) begin
        p_base_reg <= in_interior;
        p_cs_reg <= in_cs;
        p_rs_reg <= in_rs;
        p_nch_reg <= {12'd0, in_c};
        p_list_reg <= 1'b0;
    end else if (layer_end && f_sites) begin
        p_base_reg <= out_base[ADDR_W-1:0];
        p_cs_reg <= out_cstride[ADDR_W-1:0];
        p_rs_reg <= out_rstride[ADDR_W-1:0];
        p_nch_reg <= c_out;
        p_list_reg <= f_psites ? out_list : in_list;
    end

    if (rst) begin
        phase_reg <= PH_IDLE;
        cnt_reg <= 8'd0;
        layer_reg <= {LAYER_W{1'b0}};
        rec_base_reg <= {CH_AW{1'b0}};
    end else begin
        case (phase_reg)
            PH_IDLE: begin
                cnt_reg <= 8'd0;
                if (start) begin
                    phase_reg <= PH_SETUP;
                    layer_reg <= {LAYER_W{1'b0}};
                    rec_base_reg <= {CH_AW{1'b0}};
                end
            end
            PH_SETUP: begin
                cnt_reg <= cnt_reg + 8'd1;
                if (setup_pre) begin
                    if (clear_len != 17'd0) begin
                        phase_reg <= PH_CLEAR;
                    end else if (pool_go) begin
                        phase_reg <= PH_POOL;
                    end
                end
                if (setup_last) begin
                    cnt_reg <= 8'd0;
                    phase_reg <= no_sites ? PH_FILL : PH_ISSUE;
                end
            end
            PH_CLEAR: begin
                if (clear_end) begin
                    phase_reg <= pool_go ? PH_POOL : PH_SETUP;
                end
            end
            PH_POOL: begin
                if (pool_end) begin
                    phase_reg <= PH_SETUP;
                end
            end
            PH_ISSUE: begin
                if (issue_end) begin
                    phase_reg <= PH_FILL;
                    cnt_reg <= 8'd0;
                end
            end
            PH_FILL, PH_SCRUB: begin
                if (phase_reg == PH_FILL) begin
                    cnt_reg <= cnt_reg + 8'd1;
                end
                if (fill_last && scrub_go) begin
                    phase_reg <= PH_SCRUB;
                end
                if (layer_end) begin
                    cnt_reg <= 8'd0;
                    if (last_layer) begin
                        phase_reg <= PH_IDLE;
                    end else begin
                        phase_reg <= PH_SETUP;
                        layer_reg <= layer_reg + {{(LAYER_W-1){1'b0}}, 1'b1};
                        rec_base_reg <= rec_base_reg + c_out[CH_AW-1:0];
                    end
                end
            end
            default: begin
                phase_reg <= PH_IDLE;
            end
        endcase
    end
end

assign done   = layer_end && last_layer;
assign active = (phase_reg != PH_IDLE);

assign desc_rd_en   = desc_rd;
assign desc_rd_addr = {layer_reg, dword};

assign ws_rd_en   = (phase_reg == PH_ISSUE);
assign ws_rd_addr = slot_reg[SLOT_W-1:LOG2L];

assign cfg_log2q   = log2q;
assign cfg_log2p   = log2p;
assign cfg_relu    = f_relu;
assign cfg_pool    = f_pool;
assign cfg_out     = f_out;
assign cfg_maxred  = f_maxred;
assign cfg_xs2     = f_xs2;
assign layer_start = setup_first;

// MAXRED / AVG rows: y = (acc * R[n] + 2^15) >> 16 as (acc * M + 2^(S-1)) >> S;
// MAXRED and n = 1 take M = 2^15, S = 15 (y = acc)
reg [15:0] sp_m;
reg [5:0]  sp_s;

always @* begin
    sp_m = 16'h8000;
    sp_s = 6'd16;
    if (f_maxred || st_n == 3'd1) begin
        sp_s = 6'd15;
    end else if (st_n == 3'd0) begin
        sp_m = 16'd0;
    end else if (st_n == 3'd3) begin
        sp_m = 16'd21845;
    end else if (st_n != 3'd2) begin
        sp_m = 16'd16384;
    end
end

wire sp_rq = f_maxred || f_avg;

assign iss_valid   = (phase_reg == PH_ISSUE);
assign iss_first   = first_reg;
assign iss_last    = g_last;
assign iss_sub     = slot_reg[LOG2L-1:0];
assign iss_base    = row_in_reg + (ph_reg ? in_rstride[ADDR_W-1:0] : {ADDR_W{1'b0}}) +
                     (f_sites ? st_off1 : (f_xs2 ? {x0_reg[ADDR_W-2:0], 1'b0} : x0_reg[ADDR_W-1:0]));
assign iss_bias    = bias_reg;
assign iss_m       = sp_rq ? sp_m : m_reg;
assign iss_s       = sp_rq ? sp_s : s_reg;
assign iss_ph      = ph_reg;
assign iss_wr_addr = out_row_reg + (f_sites ? st_off2 : (f_pool ? x0_reg[ADDR_W:1] : x0_reg[ADDR_W-1:0]));

integer k;

// pixel p is valid when p < w_valid - x0 (SITES: the one pixel); clear byte k when
// k < the bytes left (SCRUB: byte 0)
wire remx_full = !remx_reg[21] && (remx_reg[20:LOG2L] != {(21-LOG2L){1'b0}});
wire clr_full  = (clr_rem_reg[16:LOG2L] != {(17-LOG2L){1'b0}});

always @* begin
    iss_vmask = {LANES{1'b0}};
    clr_en = {LANES{1'b0}};
    for (k = 0; k < LANES; k = k + 1) begin
        iss_vmask[k] = remx_full || (!remx_reg[21] && remx_reg[LOG2L-1:0] > k[LOG2L-1:0]) || (k == 0 && f_sites);
        clr_en[k] = (phase_reg == PH_CLEAR) && (clr_full || clr_rem_reg[LOG2L-1:0] > k[LOG2L-1:0]);
    end
    clr_en[0] = clr_en[0] || (phase_reg == PH_SCRUB);
end

assign clr_addr = (phase_reg == PH_SCRUB) ? sc_base_reg + st_off1 : clr_addr_reg;

// fields of the descriptor words the sequencer does not need (tb, in_ch_stride,
// reserved bits) and address bits above ADDR_W
wire unused_ok = &{1'b0, d0_reg[31:23], d0_reg[19:15], d0_reg[11],
                   d1_reg[63:48], d3_reg[63:49], in_rstride, out_rstride, out_cstride,
                   in_base, out_base, clear_base, cfg_out, head[77:54+GW]};

endmodule

`resetall
