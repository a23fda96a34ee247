// zs_datapath.v: the compute pipeline behind the layer sequencer.
//
// One tile enters per cycle (issue at cycle t0 in the sequencer; the weight
// store word of the issue arrives at t0 + 1). Stages:
//   t0+1  select each lane's store entry (entry q of the group for lane
//         p*Q + q), lane address = base + p + offset (XS2: base + 2p + offset)
//   t0+2  bank crossbar: each bank reads the row of the non-zero-weight lanes
//         that address it; useful-MAC count
//   t0+3  bank data to lanes; bank-conflict flag (checked at t0+2)
//   t0+3 .. t0+8  sparse_dot_product: multiply, segmented adder tree, P
//         accumulators (finished rows at t0+8)
//   t0+8  OUT layer: result[c] = acc (result RAM write)
//   t0+8 .. t0+11 zs_requant: acc * M, round, shift, ReLU, clamp
//   t0+11 zs_pool: max-pool and the activation write request
// so the last write of a layer happens FILL = 11 cycles after its last issue.

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zs_datapath #
(
    // MAC lanes: 4, 8, 16 or 32
    parameter LANES     = 8,
    // Activation memory bytes
    parameter ACT_BYTES = 65536,
    // Output values per image (result RAM size)
    parameter OUT_CAP   = 1024,
    // 1 builds the sparse-pixel MAXRED maximum
    parameter MAXRED    = 1
)
(
    input  wire                   clk,
    input  wire                   rst,

    /*
     * Layer configuration (constant while the layer's tiles are in flight)
     */
    input  wire [2:0]             cfg_log2q,
    input  wire [2:0]             cfg_log2p,
    input  wire                   cfg_relu,
    input  wire                   cfg_pool,
    input  wire                   cfg_out,
    input  wire                   cfg_maxred,
    input  wire                   cfg_xs2,
    input  wire                   layer_start,

    /*
     * Issue (stage 0)
     */
    input  wire                   iss_valid,
    input  wire                   iss_first,
    input  wire                   iss_last,
    input  wire [LOG2L-1:0]       iss_sub,
    input  wire [ADDR_W-1:0]      iss_base,
    input  wire [LANES-1:0]       iss_vmask,
    input  wire [31:0]            iss_bias,
    input  wire [15:0]            iss_m,
    input  wire [5:0]             iss_s,
    input  wire                   iss_ph,
    input  wire [ADDR_W-1:0]      iss_wr_addr,

    /*
     * Weight store word of the issue (stage 1)
     */
    input  wire [LANES*24-1:0]    ws_rd_data,

    /*
     * Activation memory
     */
    output reg  [LANES*ROW_W-1:0] act_rd_row,
    input  wire [LANES*8-1:0]     act_rd_data,
    output wire [LANES-1:0]       act_wr_en,
    output wire [ADDR_W-1:0]      act_wr_addr,
    output wire [LANES*8-1:0]     act_wr_data,

    /*
     * Result RAM write (OUT layer)
     */
    output wire                   res_we,
    output wire [RES_AW-1:0]      res_addr,
    output wire [31:0]            res_data,

    /*
     * Status
     */
    output wire                   conflict,
    output wire [LOG2L:0]         macs_inc
);

localparam LOG2L  = $clog2(LANES);
localparam ADDR_W = $clog2(ACT_BYTES);
localparam ROW_W  = ADDR_W - LOG2L;
localparam RES_AW = $clog2(OUT_CAP);

initial begin
    if (LANES != 4 && LANES != 8 && LANES != 16 && LANES != 32) begin
        $error("zs_datapath: LANES must be 4, 8, 16 or 32 (instance %m)");
        $finish;
    end
end


/*
 * Stage 1: lane entries and addresses
 */
reg                 m1_valid_reg;
reg                 m1_first_reg;
reg                 m1_last_reg;
reg [LOG2L-1:0]     m1_sub_reg;
reg [ADDR_W-1:0]    m1_base_reg;
reg [LANES-1:0]     m1_vmask_reg;
reg [31:0]          m1_bias_reg;
reg [15:0]          m1_m_reg;
reg [5:0]           m1_s_reg;
reg                 m1_ph_reg;
reg [ADDR_W-1:0]    m1_wr_addr_reg;

always @(posedge clk) begin
    m1_first_reg   <= iss_first;
    m1_last_reg    <= iss_last;
    m1_sub_reg     <= iss_sub;
    m1_base_reg    <= iss_base;
    m1_vmask_reg   <= iss_vmask;
    m1_bias_reg    <= iss_bias;
    m1_m_reg       <= iss_m;
    m1_s_reg       <= iss_s;
    m1_ph_reg      <= iss_ph;
    m1_wr_addr_reg <= iss_wr_addr;
    if (rst) begin
        m1_valid_reg <= 1'b0;
    end else begin
        m1_valid_reg <= iss_valid;
    end
end

// lane i = p*Q + q takes entry (sub & ~(Q-1)) | q of the word
wire [LOG2L-1:0] qmask = ~({LOG2L{1'b1}} << cfg_log2q);

reg [23:0]             went [0:LANES-1];
reg [LANES*ADDR_W-1:0] l_addr;
reg [LANES*8-1:0]      l_w;
reg [LANES-1:0]        l_lv;
reg [LOG2L-1:0]        p_idx;
reg [LOG2L-1:0]        lane_i;
reg [LOG2L-1:0]        e_idx;
reg [23:0]             ent;

always @* begin : comb0
    integer i;
    for (i = 0; i < LANES; i = i + 1) begin
        went[i] = ws_rd_data[i*24 +: 24];
    end
    l_addr = {LANES*ADDR_W{1'b0}};
    l_w = {LANES*8{1'b0}};
    l_lv = {LANES{1'b0}};
    p_idx = {LOG2L{1'b0}};
    lane_i = {LOG2L{1'b0}};
    e_idx = {LOG2L{1'b0}};
    ent = 24'd0;
    for (i = 0; i < LANES; i = i + 1) begin
        lane_i = i[LOG2L-1:0];
        e_idx = (m1_sub_reg & ~qmask) | (lane_i & qmask);
        ent = went[e_idx];
        p_idx = lane_i >> cfg_log2q;
        l_w[i*8 +: 8] = ent[7:0];
        l_addr[i*ADDR_W +: ADDR_W] = m1_base_reg + (cfg_xs2 ? {{(ADDR_W-LOG2L-1){1'b0}}, p_idx, 1'b0}
                                                            : {{(ADDR_W-LOG2L){1'b0}}, p_idx}) + ent[8 +: ADDR_W];
        l_lv[i] = m1_vmask_reg[p_idx];
    end
end

/*
 * Stage 2: bank crossbar (addresses), useful MACs
 */
// Bank routing is decided from the lanes' bank bits in stage 1 already: for each
// bank the (last) non-zero-weight lane that addresses it, and for each lane pair
// whether both are non-zero and share a bank. Stage 2 then only moves rows.
localparam NPAIR = LANES * (LANES - 1) / 2;

reg [LANES*LOG2L-1:0] l_sel;
reg [NPAIR-1:0]       l_pair;
reg [LANES-1:0]       l_nz;

always @* begin : comb1
    integer i, b, i2, k2;
    l_sel = {LANES*LOG2L{1'b0}};
    l_pair = {NPAIR{1'b0}};
    l_nz = {LANES{1'b0}};
    for (i = 0; i < LANES; i = i + 1) begin
        l_nz[i] = |l_w[i*8 +: 8];
    end
    for (b = 0; b < LANES; b = b + 1) begin
        for (i = 0; i < LANES; i = i + 1) begin
            if (l_nz[i] && l_addr[i*ADDR_W +: LOG2L] == b[LOG2L-1:0]) begin
                l_sel[b*LOG2L +: LOG2L] = i[LOG2L-1:0];
            end
        end
    end
    k2 = 0;
    for (i = 0; i < LANES; i = i + 1) begin
        for (i2 = i + 1; i2 < LANES; i2 = i2 + 1) begin
            l_pair[k2] = l_nz[i] && l_nz[i2] && l_addr[i*ADDR_W +: LOG2L] == l_addr[i2*ADDR_W +: LOG2L];
            k2 = k2 + 1;
        end
    end
end

reg                     m2_valid_reg;
reg                     m2_first_reg;
reg                     m2_last_reg;
reg [31:0]              m2_bias_reg;
reg [LANES*ADDR_W-1:0]  s2_addr_reg;
reg [LANES*8-1:0]       s2_w_reg;
reg [LANES-1:0]         s2_lv_reg;
reg [LANES-1:0]         s2_nz_reg;
reg [LANES*LOG2L-1:0]   s2_sel_reg;
reg [NPAIR-1:0]         s2_pair_reg;

// per-tile fields that are only needed after the accumulators
localparam SIDE_W = 16 + 6 + 1 + ADDR_W + LANES;
wire [SIDE_W-1:0] side_m1 = {m1_m_reg, m1_s_reg, m1_ph_reg, m1_wr_addr_reg, m1_vmask_reg};
wire [SIDE_W-1:0] side_m8;

always @(posedge clk) begin
    m2_first_reg <= m1_first_reg;
    m2_last_reg  <= m1_last_reg;
    m2_bias_reg  <= m1_bias_reg;
    s2_addr_reg  <= l_addr;
    s2_w_reg     <= l_w;
    s2_lv_reg    <= l_lv;
    s2_nz_reg    <= l_nz;
    s2_sel_reg   <= l_sel;
    s2_pair_reg  <= l_pair;
    if (rst) begin
        m2_valid_reg <= 1'b0;
    end else begin
        m2_valid_reg <= m1_valid_reg;
    end
end

reg [LANES*LOG2L-1:0] bank;
reg [ROW_W-1:0]       rows [0:LANES-1];
reg [LOG2L:0]         macs_cnt;

always @* begin : comb2
    integer i, b;
    bank = {LANES*LOG2L{1'b0}};
    macs_cnt = {(LOG2L+1){1'b0}};
    for (i = 0; i < LANES; i = i + 1) begin
        bank[i*LOG2L +: LOG2L] = s2_addr_reg[i*ADDR_W +: LOG2L];
        rows[i] = s2_addr_reg[i*ADDR_W+LOG2L +: ROW_W];
        macs_cnt = macs_cnt + {{LOG2L{1'b0}}, s2_nz_reg[i] && s2_lv_reg[i]};
    end
    // lanes that read the same address agree on the row; a zero-weight lane
    // does not drive the bank (its product is zero whatever it reads)
    for (b = 0; b < LANES; b = b + 1) begin
        act_rd_row[b*ROW_W +: ROW_W] = rows[s2_sel_reg[b*LOG2L +: LOG2L]];
    end
end

// bank conflict: two non-zero-weight lanes, same bank, different rows
reg conflict_pair;

always @* begin : comb3
    integer i, i2, k2;
    conflict_pair = 1'b0;
    k2 = 0;
    for (i = 0; i < LANES; i = i + 1) begin
        for (i2 = i + 1; i2 < LANES; i2 = i2 + 1) begin
            if (s2_pair_reg[k2] && rows[i] != rows[i2]) begin
                conflict_pair = 1'b1;
            end
            k2 = k2 + 1;
        end
    end
end

reg [LOG2L:0] macs_reg;

always @(posedge clk) begin
    if (rst) begin
        macs_reg <= {(LOG2L+1){1'b0}};
    end else begin
        macs_reg <= m2_valid_reg ? macs_cnt : {(LOG2L+1){1'b0}};
    end
end

assign macs_inc = macs_reg;

/*
 * Stage 3: bank data to lanes, conflict check
 */
reg                     m3_valid_reg;
reg                     m3_first_reg;
reg                     m3_last_reg;
reg [31:0]              m3_bias_reg;
reg [LANES*LOG2L-1:0]   s3_bank_reg;
reg [LANES*8-1:0]       s3_w_reg;
reg                     conflict_reg;

always @(posedge clk) begin
    m3_first_reg <= m2_first_reg;
    m3_last_reg  <= m2_last_reg;
    m3_bias_reg  <= m2_bias_reg;
    s3_bank_reg  <= bank;
    s3_w_reg     <= s2_w_reg;
    if (rst) begin
        m3_valid_reg <= 1'b0;
        conflict_reg <= 1'b0;
    end else begin
        m3_valid_reg <= m2_valid_reg;
        conflict_reg <= m2_valid_reg && conflict_pair;
    end
end

assign conflict = conflict_reg;

// bank data to lanes
reg [LANES*8-1:0] lane_a;
reg [7:0]         bank_byte [0:LANES-1];

always @* begin : comb4
    integer i;
    for (i = 0; i < LANES; i = i + 1) begin
        bank_byte[i] = act_rd_data[i*8 +: 8];
    end
    lane_a = {LANES*8{1'b0}};
    for (i = 0; i < LANES; i = i + 1) begin
        lane_a[i*8 +: 8] = bank_byte[s3_bank_reg[i*LOG2L +: LOG2L]];
    end
end

/*
 * Stages 4-8: lanes, segmented adder tree, accumulators
 */
wire                dot_valid;
wire [LANES*32-1:0] dot_acc;

sparse_dot_product #(
    .LANES(LANES),
    .MAXRED(MAXRED)
)
dot_inst (
    .clk(clk),
    .rst(rst),
    .cfg_log2q(cfg_log2q),
    .cfg_maxred(cfg_maxred),
    .in_valid(m3_valid_reg),
    .in_first(m3_first_reg),
    .in_last(m3_last_reg),
    .in_bias(m3_bias_reg),
    .in_a(lane_a),
    .in_w(s3_w_reg),
    .out_valid(dot_valid),
    .out_acc(dot_acc)
);

// side fields: stage 1 -> stage 8 (7 registers)
zs_delay #(
    .WIDTH(SIDE_W),
    .DEPTH(7)
)
side_to_acc_inst (
    .clk(clk),
    .in_data(side_m1),
    .out_data(side_m8)
);

wire [15:0]       m8_m;
wire [5:0]        m8_s;
wire              m8_ph;
wire [ADDR_W-1:0] m8_wr_addr;
wire [LANES-1:0]  m8_vmask;
assign {m8_m, m8_s, m8_ph, m8_wr_addr, m8_vmask} = side_m8;

/*
 * Stage 8: OUT layer results
 */
reg [RES_AW-1:0] res_cnt_reg;

always @(posedge clk) begin
    if (rst || layer_start) begin
        res_cnt_reg <= {RES_AW{1'b0}};
    end else if (dot_valid && cfg_out) begin
        res_cnt_reg <= res_cnt_reg + {{(RES_AW-1){1'b0}}, 1'b1};
    end
end

assign res_we   = dot_valid && cfg_out;
assign res_addr = res_cnt_reg;
assign res_data = dot_acc[31:0];

/*
 * Stages 8-11: requantisation
 */
wire               rq_valid;
wire [LANES*8-1:0] rq_y;

zs_requant #(
    .N(LANES)
)
requant_inst (
    .clk(clk),
    .rst(rst),
    .in_valid(dot_valid && !cfg_out),
    .in_acc(dot_acc),
    .in_m(m8_m),
    .in_s(m8_s),
    .in_relu(cfg_relu),
    .out_valid(rq_valid),
    .out_y(rq_y)
);

localparam WR_W = 1 + ADDR_W + LANES;
wire [WR_W-1:0] wr_m11;

zs_delay #(
    .WIDTH(WR_W),
    .DEPTH(3)
)
side_to_wr_inst (
    .clk(clk),
    .in_data({m8_ph, m8_wr_addr, m8_vmask}),
    .out_data(wr_m11)
);

/*
 * Stage 11: pooling and the activation write
 */
zs_pool #(
    .LANES(LANES),
    .ADDR_W(ADDR_W)
)
pool_inst (
    .clk(clk),
    .cfg_pool(cfg_pool),
    .cfg_log2p(cfg_log2p),
    .in_valid(rq_valid),
    .in_ph(wr_m11[ADDR_W+LANES]),
    .in_vmask(wr_m11[LANES-1:0]),
    .in_wr_addr(wr_m11[LANES +: ADDR_W]),
    .in_y(rq_y),
    .wr_en(act_wr_en),
    .wr_addr(act_wr_addr),
    .wr_data(act_wr_data)
);

// the store offset is 16 bits; addresses wrap modulo ACT_BYTES
generate
if (ADDR_W < 16) begin : g_unused_off
    reg unused_off;
    always @* begin : comb5
        integer i;
        unused_off = 1'b0;
        for (i = 0; i < LANES; i = i + 1) begin
            unused_off = unused_off | (|ws_rd_data[i*24+8+ADDR_W +: 16-ADDR_W]);
        end
        unused_off = unused_off | (|ent[23:8+ADDR_W]);
    end
end
endgenerate

endmodule

`resetall
