// zs_engine.v: the zeroskip engine behind its AXI interfaces.
//
// Command state machine (STATUS[19:16] shows the state):
//   0 IDLE     stream beats arriving here are drained -> UNEXPECTED
//   1 LOAD     program packet through zs_loader
//   2 LCLEAR   clear the activation memory (ACT_BYTES / LANES cycles)
//   3 INPUT    one image into the activation memory through zs_input (8 bytes
//              per max(1, 8 / LANES) cycles; sparse-pixel input modes: 1 byte
//              per cycle)
//   4 LAYERS   zs_sequencer runs every layer of the program
//   5 OUTLAT   result RAM read latency (OUT_LAT cycles)
//   6 OUTPUT   ceil(n_out / 2) result beats; then the next image or done
//   7 DRAIN    after an error: accept beats up to TLAST
//   8 RESP     response beat (load ACK or error), TLAST
// Every packet in gets one packet out ending in TLAST; errors drain the input
// packet, answer with one beat and return to IDLE. SOFT_RESET returns to IDLE
// from any state; the program stays valid unless the reset hit a LOAD (the
// program becomes valid when the load's ACK beat is accepted).
//
// Counters (zs_counter, one each; reset by CTRL.LOAD / CTRL.RUN, counting until
// the command's last output beat is accepted): CYCLES every cycle of the command,
// STALL cycles with s_axis_tready && !s_axis_tvalid or m_axis_tvalid &&
// !m_axis_tready, COMPUTE cycles in LAYERS, MACS lanes issued with a non-zero
// weight at a valid pixel.
//
// Input checks (zs_input, in this order): BAD_SITES (mode 2: n > n_max),
// INPUT_SHORT, INPUT_LONG, BAD_SITES (mode 2: y / x off the map); each answered
// after TLAST (INPUT_SHORT: at once).
// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

`include "zs_contract.vh"

module zs_engine #
(
    // MAC lanes: 4, 8, 16 or 32
    parameter LANES        = 8,
    // Activation memory bytes (power of two, at most 65536)
    parameter ACT_BYTES    = 65536,
    // Weight-store entries (multiple of LANES)
    parameter W_SLOTS      = 65536,
    // Channel records
    parameter CH_CAP       = 2048,
    // Output values per image
    parameter OUT_CAP      = 1024,
    // Layer descriptors
    parameter MAX_LAYERS   = 32,
    // Entries per site list (0: no sparse-pixel mode)
    parameter SITE_CAP     = 64,
    // Timing constants (driver/contract.json "timing")
    parameter LAYER_SETUP  = `ZS_T_LAYER_SETUP,
    parameter FILL         = `ZS_T_FILL,
    parameter OUT_LAT      = `ZS_T_OUT_LAT
)
(
    input  wire                clk,
    input  wire                rst,

    /*
     * Commands and settings (zs_regs)
     */
    input  wire                cmd_load,
    input  wire                cmd_run,
    input  wire                cmd_soft_reset,
    input  wire [15:0]         batch,
    input  wire                fault_no_tlast,

    /*
     * Status (zs_regs)
     */
    output wire                st_busy,
    output wire                st_done,
    output wire                st_error,
    output wire                st_prog_valid,
    output wire [7:0]          st_err_code,
    output wire [3:0]          st_state,
    output wire [31:0]         cnt_cycles,
    output wire [31:0]         cnt_stall,
    output wire [31:0]         cnt_compute,
    output wire [31:0]         cnt_macs,
    output wire [31:0]         err_info,
    output wire                ev_done,
    output wire                ev_error,

    /*
     * AXI4-Stream in (program / images)
     */
    input  wire [63:0]         s_axis_tdata,
    input  wire                s_axis_tvalid,
    output wire                s_axis_tready,
    input  wire                s_axis_tlast,

    /*
     * AXI4-Stream out (ACK / results / errors)
     */
    output wire [63:0]         m_axis_tdata,
    output wire                m_axis_tvalid,
    input  wire                m_axis_tready,
    output wire                m_axis_tlast
);

localparam LOG2L    = $clog2(LANES);
localparam ADDR_W   = $clog2(ACT_BYTES);
localparam ROW_W    = ADDR_W - LOG2L;
localparam SLOT_W   = $clog2(W_SLOTS);
localparam WS_AW    = (W_SLOTS / LANES > 1) ? $clog2(W_SLOTS / LANES) : 1;
localparam CH_AW    = (CH_CAP > 1) ? $clog2(CH_CAP) : 1;
localparam LAYER_W  = (MAX_LAYERS > 1) ? $clog2(MAX_LAYERS) : 1;
localparam CHAN_W   = 32 + 16 + 6 + 24 + SLOT_W;
localparam RES_AW   = $clog2(OUT_CAP);

initial begin
    if (LANES != 4 && LANES != 8 && LANES != 16 && LANES != 32) begin
        $error("zs_engine: LANES must be 4, 8, 16 or 32 (instance %m)");
        $finish;
    end
    if ((1 << ADDR_W) != ACT_BYTES || ACT_BYTES < 16 * LANES || ACT_BYTES > 65536) begin
        $error("zs_engine: ACT_BYTES must be a power of two in 16*LANES..65536 (instance %m)");
        $finish;
    end
    if (OUT_CAP < 4 || OUT_LAT < 1) begin
        $error("zs_engine: OUT_CAP must be at least 4 and OUT_LAT at least 1 (instance %m)");
        $finish;
    end
end

localparam [3:0]
    S_IDLE   = 4'd0,
    S_LOAD   = 4'd1,
    S_LCLEAR = 4'd2,
    S_INPUT  = 4'd3,
    S_LAYERS = 4'd4,
    S_OUTLAT = 4'd5,
    S_OUTPUT = 4'd6,
    S_DRAIN  = 4'd7,
    S_RESP   = 4'd8;

// engine-local reset: power-on reset or SOFT_RESET
wire erst = rst || cmd_soft_reset;

reg [3:0]  state_reg;
reg        load_cmd_reg;     // the command in progress is a LOAD
reg        cnt_en_reg;
reg [31:0] pkt_idx_reg;     // beats accepted in the current packet
wire [31:0] pkt_idx_p1 = pkt_idx_reg + 32'd1;
reg        tlast_seen_reg;
reg [7:0]  code_reg;         // error of the command in progress
reg [31:0] eidx_reg;
reg        prog_valid_reg;
reg        done_reg;
reg        error_reg;
reg [7:0]  st_code_reg;
reg [31:0] err_info_reg;
reg        ev_done_reg;
reg        ev_error_reg;
reg [15:0] img_reg;
reg [31:0] img_beat0_reg;        // packet index of the current image's first beat
reg [15:0] nimg_reg;
reg [ROW_W-1:0] lclr_reg;
reg [7:0]  olat_reg;

/*
 * Loader, program memories
 */
wire                ld_tready;
wire                ld_done;
wire                ld_err;
wire [7:0]          ld_err_code;
wire [31:0]         ld_err_idx;
wire [7:0]          prog_n_layers;
wire [ADDR_W-1:0]   prog_in_base;
wire [16:0]         prog_in_bytes;
wire [15:0]         prog_n_out;
wire [1:0]          prog_in_mode;
wire [7:0]          prog_n_max;
wire [7:0]          prog_thr;
wire [3:0]          prog_c_in;
wire [3:0]          prog_pad;
wire [15:0]         prog_h0, prog_w0;
wire [ADDR_W-1:0]   prog_rs0, prog_cs0, prog_interior;
wire                desc_we;
wire [LAYER_W+1:0]  desc_waddr;
wire [63:0]         desc_wdata;
wire                chan_we;
wire [CH_AW-1:0]    chan_waddr;
wire [CHAN_W-1:0]   chan_wdata;
wire                ld_chan_rd_en;
wire [CH_AW-1:0]    ld_chan_rd_addr;
wire [LANES-1:0]    ws_we;
wire [WS_AW-1:0]    ws_waddr;
wire [23:0]         ws_wentry;

wire                seq_desc_rd_en;
wire [LAYER_W+1:0]  seq_desc_rd_addr;
wire [63:0]         desc_rd_data;
wire                seq_chan_rd_en;
wire [CH_AW-1:0]    seq_chan_rd_addr;
wire [CHAN_W-1:0]   chan_rd_data;
wire                ws_rd_en;
wire [WS_AW-1:0]    ws_rd_addr;
wire [LANES*24-1:0] ws_rd_data;

wire s_fire = s_axis_tvalid && s_axis_tready;

zs_loader #(
    .LANES(LANES),
    .ACT_BYTES(ACT_BYTES),
    .W_SLOTS(W_SLOTS),
    .CH_CAP(CH_CAP),
    .OUT_CAP(OUT_CAP),
    .MAX_LAYERS(MAX_LAYERS),
    .SITE_CAP(SITE_CAP)
)
loader_inst (
    .clk(clk),
    .rst(erst),
    .start(state_reg == S_IDLE && cmd_load),
    .beat_idx(pkt_idx_reg),
    .beat_idx_p1(pkt_idx_p1),
    .done(ld_done),
    .err(ld_err),
    .err_code(ld_err_code),
    .err_idx(ld_err_idx),
    .s_tdata(s_axis_tdata),
    .s_tlast(s_axis_tlast),
    .s_tvalid(s_axis_tvalid && state_reg == S_LOAD),
    .s_tready(ld_tready),
    .prog_n_layers(prog_n_layers),
    .prog_in_base(prog_in_base),
    .prog_in_bytes(prog_in_bytes),
    .prog_n_out(prog_n_out),
    .prog_in_mode(prog_in_mode),
    .prog_n_max(prog_n_max),
    .prog_thr(prog_thr),
    .prog_c_in(prog_c_in),
    .prog_pad(prog_pad),
    .prog_h0(prog_h0),
    .prog_w0(prog_w0),
    .prog_rs0(prog_rs0),
    .prog_cs0(prog_cs0),
    .prog_interior(prog_interior),
    .desc_we(desc_we),
    .desc_waddr(desc_waddr),
    .desc_wdata(desc_wdata),
    .chan_we(chan_we),
    .chan_waddr(chan_waddr),
    .chan_wdata(chan_wdata),
    .chan_rd_en(ld_chan_rd_en),
    .chan_rd_addr(ld_chan_rd_addr),
    .chan_rd_data(chan_rd_data),
    .ws_we(ws_we),
    .ws_waddr(ws_waddr),
    .ws_wentry(ws_wentry)
);

zs_sdp_ram #(
    .DEPTH(MAX_LAYERS * 4),
    .WIDTH(64),
    .RAM_BLOCK(1)
)
desc_ram_inst (
    .clk(clk),
    .wr_en(desc_we),
    .wr_addr(desc_waddr),
    .wr_data(desc_wdata),
    .rd_en(seq_desc_rd_en),
    .rd_addr(seq_desc_rd_addr),
    .rd_data(desc_rd_data)
);

wire loading = (state_reg == S_LOAD);

zs_sdp_ram #(
    .DEPTH(CH_CAP),
    .WIDTH(CHAN_W)
)
chan_ram_inst (
    .clk(clk),
    .wr_en(chan_we),
    .wr_addr(chan_waddr),
    .wr_data(chan_wdata),
    .rd_en(loading ? ld_chan_rd_en : seq_chan_rd_en),
    .rd_addr(loading ? ld_chan_rd_addr : seq_chan_rd_addr),
    .rd_data(chan_rd_data)
);

sparse_weight_store #(
    .DEPTH(W_SLOTS / LANES),
    .WIDTH(LANES * 24)
)
weight_store_inst (
    .clk(clk),
    .wr_en(ws_we),
    .wr_addr(ws_waddr),
    .wr_data({LANES{ws_wentry}}),
    .rd_en(ws_rd_en),
    .rd_addr(ws_rd_addr),
    .rd_data(ws_rd_data)
);

/*
 * Sequencer and datapath
 */
wire                 conflict;
wire                 seq_flush = erst || (state_reg == S_LAYERS && conflict);
wire                 seq_done;
wire                 seq_active;
wire [2:0]           cfg_log2q, cfg_log2p;
wire                 cfg_relu, cfg_pool, cfg_out, cfg_maxred, cfg_xs2, layer_start;
wire                 iss_valid, iss_first, iss_last, iss_ph;
wire [LOG2L-1:0]     iss_sub;
wire [ADDR_W-1:0]    iss_base, iss_wr_addr;
wire [LANES-1:0]     iss_vmask;
wire [31:0]          iss_bias;
wire [15:0]          iss_m;
wire [5:0]           iss_s;
wire [LANES-1:0]     clr_en;
wire [ADDR_W-1:0]    clr_addr;
wire [LANES*ROW_W-1:0] act_rd_row;
wire [LANES*8-1:0]   act_rd_data;
wire [LANES-1:0]     dp_wr_en;
wire [ADDR_W-1:0]    dp_wr_addr;
wire [LANES*8-1:0]   dp_wr_data;
wire                 res_we;
wire [RES_AW-1:0]    res_addr;
wire [31:0]          res_data;
wire [LOG2L:0]       macs_inc;

wire seq_start;
localparam SW_LW = (SITE_CAP > 1) ? $clog2(SITE_CAP) + 1 : 1;
wire             lists_clear;
wire             app_valid;
wire [7:0]       app_y, app_x;
wire [SW_LW-1:0] len_a;

zs_sequencer #(
    .LANES(LANES),
    .ACT_BYTES(ACT_BYTES),
    .W_SLOTS(W_SLOTS),
    .CH_CAP(CH_CAP),
    .MAX_LAYERS(MAX_LAYERS),
    .LAYER_SETUP(LAYER_SETUP),
    .FILL(FILL),
    .SITE_CAP(SITE_CAP)
)
seq_inst (
    .clk(clk),
    .rst(seq_flush),
    .start(seq_start),
    .n_layers(prog_n_layers),
    .done(seq_done),
    .active(seq_active),
    .in_interior(prog_interior),
    .in_rs(prog_rs0),
    .in_cs(prog_cs0),
    .in_c(prog_c_in),
    .lists_clear(lists_clear),
    .app_valid(app_valid),
    .app_y(app_y),
    .app_x(app_x),
    .len_a(len_a),
    .desc_rd_en(seq_desc_rd_en),
    .desc_rd_addr(seq_desc_rd_addr),
    .desc_rd_data(desc_rd_data),
    .chan_rd_en(seq_chan_rd_en),
    .chan_rd_addr(seq_chan_rd_addr),
    .chan_rd_data(chan_rd_data),
    .ws_rd_en(ws_rd_en),
    .ws_rd_addr(ws_rd_addr),
    .cfg_log2q(cfg_log2q),
    .cfg_log2p(cfg_log2p),
    .cfg_relu(cfg_relu),
    .cfg_pool(cfg_pool),
    .cfg_out(cfg_out),
    .cfg_maxred(cfg_maxred),
    .cfg_xs2(cfg_xs2),
    .layer_start(layer_start),
    .iss_valid(iss_valid),
    .iss_first(iss_first),
    .iss_last(iss_last),
    .iss_sub(iss_sub),
    .iss_base(iss_base),
    .iss_vmask(iss_vmask),
    .iss_bias(iss_bias),
    .iss_m(iss_m),
    .iss_s(iss_s),
    .iss_ph(iss_ph),
    .iss_wr_addr(iss_wr_addr),
    .clr_en(clr_en),
    .clr_addr(clr_addr)
);

zs_datapath #(
    .LANES(LANES),
    .ACT_BYTES(ACT_BYTES),
    .OUT_CAP(OUT_CAP),
    .MAXRED(SITE_CAP > 0 ? 1 : 0)
)
datapath_inst (
    .clk(clk),
    .rst(seq_flush),
    .cfg_log2q(cfg_log2q),
    .cfg_log2p(cfg_log2p),
    .cfg_relu(cfg_relu),
    .cfg_pool(cfg_pool),
    .cfg_out(cfg_out),
    .cfg_maxred(cfg_maxred),
    .cfg_xs2(cfg_xs2),
    .layer_start(layer_start),
    .iss_valid(iss_valid),
    .iss_first(iss_first),
    .iss_last(iss_last),
    .iss_sub(iss_sub),
    .iss_base(iss_base),
    .iss_vmask(iss_vmask),
    .iss_bias(iss_bias),
    .iss_m(iss_m),
    .iss_s(iss_s),
    .iss_ph(iss_ph),
    .iss_wr_addr(iss_wr_addr),
    .ws_rd_data(ws_rd_data),
    .act_rd_row(act_rd_row),
    .act_rd_data(act_rd_data),
    .act_wr_en(dp_wr_en),
    .act_wr_addr(dp_wr_addr),
    .act_wr_data(dp_wr_data),
    .res_we(res_we),
    .res_addr(res_addr),
    .res_data(res_data),
    .conflict(conflict),
    .macs_inc(macs_inc)
);

/*
 * Input phase and the activation memory's write sources
 */
wire                res_block_done;   // zs_stream_out: the image's result beats are sent
wire                in_held;
wire                in_img_done;
wire                in_bad_n, in_short, in_long, in_bad_site;
wire [LANES-1:0]    in_wr_en;
wire [ADDR_W-1:0]   in_wr_addr;
wire [LANES*8-1:0]  in_wr_data;
wire                last_image = (img_reg == nimg_reg - 16'd1);
wire                next_image = (state_reg == S_OUTPUT) && res_block_done && !last_image;

zs_input #(
    .LANES(LANES),
    .ACT_BYTES(ACT_BYTES),
    .SITE_CAP(SITE_CAP)
)
input_inst (
    .clk(clk),
    .rst(erst),
    .img_start((state_reg == S_IDLE && (cmd_load || cmd_run)) || next_image),
    .last_image(last_image),
    .img_done(in_img_done),
    .prog_in_mode(prog_in_mode),
    .prog_in_base(prog_in_base),
    .prog_in_bytes(prog_in_bytes),
    .prog_n_max(prog_n_max),
    .prog_thr(prog_thr),
    .prog_c_in(prog_c_in),
    .prog_pad(prog_pad),
    .prog_h0(prog_h0),
    .prog_w0(prog_w0),
    .prog_rs0(prog_rs0),
    .prog_cs0(prog_cs0),
    .prog_interior(prog_interior),
    .s_tdata(s_axis_tdata),
    .s_tlast(s_axis_tlast),
    .beat(s_fire && state_reg == S_INPUT),
    .held(in_held),
    .bad_n(in_bad_n),
    .in_short(in_short),
    .in_long(in_long),
    .bad_site(in_bad_site),
    .wr_en(in_wr_en),
    .wr_addr(in_wr_addr),
    .wr_data(in_wr_data),
    .app_valid(app_valid),
    .app_y(app_y),
    .app_x(app_x),
    .len_a(len_a)
);

assign lists_clear = !(state_reg == S_INPUT || state_reg == S_LAYERS);

reg [LANES-1:0]   wr_en;
reg [ADDR_W-1:0]  wr_addr;
reg [LANES*8-1:0] wr_data;

always @* begin
    wr_en = {LANES{1'b0}};
    wr_addr = {ADDR_W{1'b0}};
    wr_data = {LANES*8{1'b0}};
    if (state_reg == S_INPUT) begin
        wr_en = in_wr_en;
        wr_addr = in_wr_addr;
        wr_data = in_wr_data;
    end else if (state_reg == S_LCLEAR) begin
        wr_addr = {lclr_reg, {LOG2L{1'b0}}};
        wr_en = {LANES{1'b1}};
    end else if (|clr_en) begin
        wr_addr = clr_addr;
        wr_en = clr_en;
    end else begin
        wr_addr = dp_wr_addr;
        wr_en = dp_wr_en;
        wr_data = dp_wr_data;
    end
end

zs_act_mem #(
    .LANES(LANES),
    .ACT_BYTES(ACT_BYTES)
)
act_mem_inst (
    .clk(clk),
    .wr_en(wr_en),
    .wr_addr(wr_addr),
    .wr_data(wr_data),
    .rd_row(act_rd_row),
    .rd_data(act_rd_data)
);

/*
 * Output stream
 */
wire        out_tvalid;
wire        resp_active = (state_reg == S_RESP);
wire [31:0] resp_info = (load_cmd_reg && code_reg == `ZS_ERR_OK) ? pkt_idx_reg : eidx_reg;
wire [63:0] resp_data = {resp_info[23:0], code_reg, load_cmd_reg ? `ZS_ACK_MAGIC : `ZS_ERR_MAGIC};

zs_stream_out #(
    .OUT_CAP(OUT_CAP)
)
stream_out_inst (
    .clk(clk),
    .rst(erst),
    .res_we(res_we),
    .res_addr(res_addr),
    .res_data(res_data),
    .res_start(state_reg == S_OUTLAT),
    .res_active(state_reg == S_OUTPUT),
    .n_out(prog_n_out),
    .last_image(last_image),
    .suppress_tlast(fault_no_tlast),
    .resp_active(resp_active),
    .resp_data(resp_data),
    .block_done(res_block_done),
    .m_axis_tdata(m_axis_tdata),
    .m_axis_tvalid(out_tvalid),
    .m_axis_tready(m_axis_tready),
    .m_axis_tlast(m_axis_tlast)
);

// SOFT_RESET stops both streams in its cycle: no output beat is handed over then
assign m_axis_tvalid = out_tvalid && !cmd_soft_reset;

wire m_fire = m_axis_tvalid && m_axis_tready;

/*
 * Command state machine
 */
reg s_tready;

always @* begin
    case (state_reg)
        S_IDLE:  s_tready = !(cmd_load || cmd_run);
        S_LOAD:  s_tready = ld_tready;
        S_INPUT: s_tready = !in_held;
        S_DRAIN: s_tready = 1'b1;
        default: s_tready = 1'b0;
    endcase
end

assign s_axis_tready = s_tready && !cmd_soft_reset;

// the last chunk of an image has been written: the layers start next cycle
assign seq_start = in_img_done;

localparam [ROW_W-1:0] LCLR_LAST = {ROW_W{1'b1}};

always @(posedge clk) begin
    ev_done_reg <= 1'b0;
    ev_error_reg <= 1'b0;

    if (erst) begin
        state_reg <= S_IDLE;
        cnt_en_reg <= 1'b0;
        done_reg <= 1'b0;
        error_reg <= 1'b0;
        st_code_reg <= 8'd0;
        if (rst) begin
            prog_valid_reg <= 1'b0;
            err_info_reg <= 32'd0;
            load_cmd_reg <= 1'b0;
            code_reg <= 8'd0;
            eidx_reg <= 32'd0;
            pkt_idx_reg <= 32'd0;
        end
    end else begin
        if (s_fire) begin
            pkt_idx_reg <= pkt_idx_p1;
            if (s_axis_tlast) begin
                tlast_seen_reg <= 1'b1;
            end
        end

        case (state_reg)
            S_IDLE: begin
                if (cmd_load || cmd_run) begin
                    load_cmd_reg <= cmd_load;
                    cnt_en_reg <= 1'b1;
                    pkt_idx_reg <= 32'd0;
                    tlast_seen_reg <= 1'b0;
                    done_reg <= 1'b0;
                    error_reg <= 1'b0;
                    st_code_reg <= 8'd0;
                    code_reg <= `ZS_ERR_OK;
                    eidx_reg <= 32'd0;
                    img_reg <= 16'd0;
                    img_beat0_reg <= 32'd0;
                    nimg_reg <= batch;
                    if (cmd_load) begin
                        prog_valid_reg <= 1'b0;
                        state_reg <= S_LOAD;
                    end else if (!prog_valid_reg) begin
                        code_reg <= `ZS_ERR_NO_PROGRAM;
                        state_reg <= S_DRAIN;
                    end else if (batch == 16'd0) begin
                        code_reg <= `ZS_ERR_INPUT_SHORT;
                        state_reg <= S_DRAIN;
                    end else begin
                        state_reg <= S_INPUT;
                    end
                end else if (s_fire) begin
                    // stray data: drain it and answer UNEXPECTED
                    load_cmd_reg <= 1'b0;
                    done_reg <= 1'b0;
                    error_reg <= 1'b0;
                    st_code_reg <= 8'd0;
                    code_reg <= `ZS_ERR_UNEXPECTED;
                    eidx_reg <= 32'd0;
                    pkt_idx_reg <= 32'd1;
                    state_reg <= s_axis_tlast ? S_RESP : S_DRAIN;
                end
            end
            S_LOAD: begin
                if (ld_err) begin
                    code_reg <= ld_err_code;
                    eidx_reg <= ld_err_idx;
                    state_reg <= (tlast_seen_reg || (s_fire && s_axis_tlast)) ? S_RESP : S_DRAIN;
                end else if (ld_done) begin
                    lclr_reg <= {ROW_W{1'b0}};
                    state_reg <= S_LCLEAR;
                end
            end
            S_LCLEAR: begin
                lclr_reg <= lclr_reg + {{(ROW_W-1){1'b0}}, 1'b1};
                if (lclr_reg == LCLR_LAST) begin
                    state_reg <= S_RESP;
                end
            end
            S_INPUT: begin
                if (in_held) begin
                    if (in_img_done) begin
                        state_reg <= S_LAYERS;
                    end
                end else if (s_fire) begin
                    if (in_bad_n) begin
                        code_reg <= `ZS_ERR_BAD_SITES;
                        eidx_reg <= pkt_idx_reg;
                        state_reg <= s_axis_tlast ? S_RESP : S_DRAIN;
                    end else if (in_short) begin
                        code_reg <= `ZS_ERR_INPUT_SHORT;
                        eidx_reg <= pkt_idx_reg;
                        state_reg <= S_RESP;
                    end else if (in_long) begin
                        code_reg <= `ZS_ERR_INPUT_LONG;
                        eidx_reg <= pkt_idx_reg;
                        state_reg <= S_DRAIN;
                    end else if (in_bad_site) begin
                        code_reg <= `ZS_ERR_BAD_SITES;
                        eidx_reg <= pkt_idx_reg;
                        state_reg <= s_axis_tlast ? S_RESP : S_DRAIN;
                    end else if (in_img_done) begin
                        state_reg <= S_LAYERS;
                    end
                end
            end
            S_LAYERS: begin
                if (conflict) begin
                    code_reg <= `ZS_ERR_BANK_CONFLICT;
                    eidx_reg <= img_beat0_reg;
                    state_reg <= tlast_seen_reg ? S_RESP : S_DRAIN;
                end else if (seq_done) begin
                    olat_reg <= 8'd0;
                    state_reg <= S_OUTLAT;
                end
            end
            S_OUTLAT: begin
                olat_reg <= olat_reg + 8'd1;
                if (olat_reg == OUT_LAT - 1) begin
                    state_reg <= S_OUTPUT;
                end
            end
            S_OUTPUT: begin
                if (res_block_done) begin
                    if (last_image) begin
                        state_reg <= S_IDLE;
                        cnt_en_reg <= 1'b0;
                        done_reg <= 1'b1;
                        ev_done_reg <= 1'b1;
                    end else begin
                        img_reg <= img_reg + 16'd1;
                        img_beat0_reg <= pkt_idx_reg;
                        state_reg <= S_INPUT;
                    end
                end
            end
            S_DRAIN: begin
                if (s_fire && s_axis_tlast) begin
                    state_reg <= S_RESP;
                end
            end
            S_RESP: begin
                if (m_fire) begin
                    state_reg <= S_IDLE;
                    cnt_en_reg <= 1'b0;
                    done_reg <= 1'b1;
                    ev_done_reg <= 1'b1;
                    st_code_reg <= code_reg;
                    if (code_reg != `ZS_ERR_OK) begin
                        error_reg <= 1'b1;
                        ev_error_reg <= 1'b1;
                        err_info_reg <= eidx_reg;
                    end else if (load_cmd_reg) begin
                        prog_valid_reg <= 1'b1;
                    end
                end
            end
            default: begin
                state_reg <= S_IDLE;
            end
        endcase
    end
end

assign st_busy       = (state_reg != S_IDLE);
assign st_done       = done_reg;
assign st_error      = error_reg;
assign st_prog_valid = prog_valid_reg;
assign st_err_code   = st_code_reg;
assign st_state      = state_reg;
/*
 * Counters: cleared at reset and when a command starts (a stray packet leaves
 * them alone), counting while cnt_en_reg. cycles +1, stall +1 on an idle offer
 * on either stream, compute +1 in S_LAYERS, macs + macs_inc.
 */
wire        cnt_clr = rst || (!cmd_soft_reset && state_reg == S_IDLE && (cmd_load || cmd_run));
wire        cnt_ce  = !erst && cnt_en_reg;
wire [31:0] cnt_inc [0:3];
assign cnt_inc[0] = 32'd1;
assign cnt_inc[1] = {31'd0, (s_axis_tready && !s_axis_tvalid) || (m_axis_tvalid && !m_axis_tready)};
assign cnt_inc[2] = {31'd0, state_reg == S_LAYERS};
assign cnt_inc[3] = {{(31-LOG2L){1'b0}}, macs_inc};

wire [31:0] cnt_val [0:3];
genvar gc;
generate
for (gc = 0; gc < 4; gc = gc + 1) begin : g_cnt
    zs_counter #(
        .WIDTH(32)
    )
    cnt_inst (
        .clk(clk),
        .clr(cnt_clr),
        .ce(cnt_ce),
        .inc(cnt_inc[gc]),
        .count(cnt_val[gc])
    );
end
endgenerate
assign cnt_cycles    = cnt_val[0];
assign cnt_stall     = cnt_val[1];
assign cnt_compute   = cnt_val[2];
assign cnt_macs      = cnt_val[3];
assign err_info      = err_info_reg;
assign ev_done       = ev_done_reg;
assign ev_error      = ev_error_reg;

// the response carries 24 bits of the beat index
wire unused_ok = &{1'b0, seq_active, resp_info[31:24]};

endmodule

`resetall
