// sparse_dot_product.v: the P x Q lane array, the segmented adder tree and the
// P row accumulators of the zeroskip engine.
//
// Every valid cycle carries one tile: LANES (= P * Q) activation/weight pairs,
// lane p * Q + q holding entry q of pixel p. Each lane multiplies in a
// zero_skip_mac (product only); the segmented adder tree sums each group of Q
// consecutive products into one partial sum per pixel (Q = 2^cfg_log2q is
// fixed for a whole layer); accumulator p loads bias + sum on a row's first
// group and adds the sum on later groups. out_valid marks the cycle after a
// row's last group, when out_acc holds the P finished accumulators
// (accumulator p in bits [32p +: 32]; only p < P are meaningful).
//
// Latency: in_* at cycle u, out_valid/out_acc at u + 5
//   u+1 lane input registers, u+2 products, u+3 tree levels 1-2,
//   u+4 tree levels 3-5 (as LANES allows Q = 8, 16, 32) and group select,
//   u+5 accumulators.
//
// cfg_maxred (sparse-pixel MAXRED, P = 1): accumulator 0 takes the maximum of the
// activations of the lanes with a non-zero weight (-128 when there is none) instead
// of the sum, and the maximum over the row's groups. The maximum is found bit by bit
// from the MSB (offset binary): keep the candidate lanes that have the bit set when
// any has it; four bits per pipeline stage, alongside the adder tree.

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module sparse_dot_product #
(
    // MAC lanes per tile (4, 8, 16 or 32)
    parameter LANES  = 8,
    // 1 builds the MAXRED maximum
    parameter MAXRED = 1
)
(
    input  wire                  clk,
    input  wire                  rst,

    /*
     * Layer configuration (constant while tiles are in flight)
     */
    input  wire [2:0]            cfg_log2q,
    input  wire                  cfg_maxred,

    /*
     * Tile in
     */
    input  wire                  in_valid,
    input  wire                  in_first,
    input  wire                  in_last,
    input  wire [31:0]           in_bias,
    input  wire [LANES*8-1:0]    in_a,
    input  wire [LANES*8-1:0]    in_w,

    /*
     * Finished rows out
     */
    output wire                  out_valid,
    output wire [LANES*32-1:0]   out_acc
);

// partial-sum width: a product is within -2^14..2^14, so a sum of LANES of them
// fits 16 + log2(LANES) bits signed
localparam SW = 16 + $clog2(LANES);

initial begin
    if (LANES != 4 && LANES != 8 && LANES != 16 && LANES != 32) begin
        $error("sparse_dot_product: LANES must be 4, 8, 16 or 32 (instance %m)");
        $finish;
    end
end

// lane array
wire [LANES*16-1:0] prod;
wire [LANES-1:0]    prod_valid_unused;
wire [LANES-1:0]    acc_valid_unused;
wire [LANES*32-1:0] acc_unused;

genvar gi;
generate
for (gi = 0; gi < LANES; gi = gi + 1) begin : g_lane
    zero_skip_mac #(
        .ACC_W(32),
        .ACC_ENABLE(0)
    )
    mac_inst (
        .clk(clk),
        .rst(rst),
        .in_valid(in_valid),
        .in_clear(in_first),
        .in_last(in_last),
        .in_a(in_a[gi*8 +: 8]),
        .in_w(in_w[gi*8 +: 8]),
        .prod_valid(prod_valid_unused[gi]),
        .prod(prod[gi*16 +: 16]),
        .acc_valid(acc_valid_unused[gi]),
        .acc(acc_unused[gi*32 +: 32])
    );
end
endgenerate

// control pipeline alongside the lanes: d1 (u+1) .. d4 (u+4)
reg        v1_reg, v2_reg, v3_reg, v4_reg;
reg        f1_reg, f2_reg, f3_reg, f4_reg;
reg        l1_reg, l2_reg, l3_reg, l4_reg;
reg [31:0] b1_reg, b2_reg, b3_reg, b4_reg;

always @(posedge clk) begin
    f1_reg <= in_first;  f2_reg <= f1_reg;  f3_reg <= f2_reg;  f4_reg <= f3_reg;
    l1_reg <= in_last;   l2_reg <= l1_reg;  l3_reg <= l2_reg;  l4_reg <= l3_reg;
    b1_reg <= in_bias;   b2_reg <= b1_reg;  b3_reg <= b2_reg;  b4_reg <= b3_reg;
    if (rst) begin
        {v1_reg, v2_reg, v3_reg, v4_reg} <= 4'd0;
    end else begin
        v1_reg <= in_valid;
        v2_reg <= v1_reg;
        v3_reg <= v2_reg;
        v4_reg <= v3_reg;
    end
end

// segmented adder tree, first half: levels 1 and 2, then select the level
// that matches Q (compacted: group j of the selected level in slot j; slots at
// or above P carry whatever is cheapest, their accumulators are not used)
reg [LANES*SW-1:0] lv0, lv1, lv2, sel_a;
reg [LANES*SW-1:0] tree_a_reg;
reg [LANES*SW-1:0] tree_b_reg;
integer j;

always @* begin
    lv0 = {LANES*SW{1'b0}};
    lv1 = {LANES*SW{1'b0}};
    lv2 = {LANES*SW{1'b0}};
    for (j = 0; j < LANES; j = j + 1) begin
        lv0[j*SW +: SW] = {{(SW-16){prod[j*16+15]}}, prod[j*16 +: 16]};
    end
    for (j = 0; j < LANES/2; j = j + 1) begin
        lv1[j*SW +: SW] = lv0[(2*j)*SW +: SW] + lv0[(2*j+1)*SW +: SW];
    end
    for (j = 0; j < LANES/4; j = j + 1) begin
        lv2[j*SW +: SW] = lv1[(2*j)*SW +: SW] + lv1[(2*j+1)*SW +: SW];
    end
    sel_a = lv0;
    for (j = 0; j < LANES/2; j = j + 1) begin
        if (cfg_log2q == 3'd1 || (cfg_log2q != 3'd0 && j >= LANES/4)) begin
            sel_a[j*SW +: SW] = lv1[j*SW +: SW];
        end else if (cfg_log2q != 3'd0) begin
            sel_a[j*SW +: SW] = lv2[j*SW +: SW];
        end
    end
end

always @(posedge clk) begin
    tree_a_reg <= sel_a;
end

// second half: levels 3, 4 and 5 (when LANES allows Q = 8, 16, 32) and the final
// select (slots at or above P again carry the cheapest level)
reg [LANES*SW-1:0] lv3, lv4, lv5, sel_b;

always @* begin
    lv3 = {LANES*SW{1'b0}};
    lv4 = {LANES*SW{1'b0}};
    lv5 = {LANES*SW{1'b0}};
    for (j = 0; j < LANES/8; j = j + 1) begin
        lv3[j*SW +: SW] = tree_a_reg[(2*j)*SW +: SW] + tree_a_reg[(2*j+1)*SW +: SW];
    end
    for (j = 0; j < LANES/16; j = j + 1) begin
        lv4[j*SW +: SW] = lv3[(2*j)*SW +: SW] + lv3[(2*j+1)*SW +: SW];
    end
    for (j = 0; j < LANES/32; j = j + 1) begin
        lv5[j*SW +: SW] = lv4[(2*j)*SW +: SW] + lv4[(2*j+1)*SW +: SW];
    end
    sel_b = tree_a_reg;
    for (j = 0; j < LANES/8; j = j + 1) begin
        if (cfg_log2q == 3'd3 || (cfg_log2q > 3'd3 && j >= LANES/16)) begin
            sel_b[j*SW +: SW] = lv3[j*SW +: SW];
        end else if (cfg_log2q == 3'd4 || (cfg_log2q > 3'd4 && j >= LANES/32)) begin
            sel_b[j*SW +: SW] = lv4[j*SW +: SW];
        end else if (cfg_log2q > 3'd4) begin
            sel_b[j*SW +: SW] = lv5[j*SW +: SW];
        end
    end
end

always @(posedge clk) begin
    tree_b_reg <= sel_b;
end

// MAXRED maximum: u+1 offset-binary activations and candidates, u+2 after bits 7-4,
// u+3 after bits 3-0, u+4 aligned with tree_b_reg
wire       mx_on = (MAXRED != 0) && cfg_maxred;
reg [7:0]  mx4_reg;

generate
if (MAXRED != 0) begin : g_max
    reg [LANES*8-1:0] mx_a1_reg;
    reg [LANES-1:0]   mx_c1_reg;
    reg [LANES*4-1:0] mx_a2_reg;
    reg [LANES-1:0]   mx_c2_reg;
    reg [3:0]         mx_h2_reg;
    reg [7:0]         mx3_reg;
    reg [LANES-1:0]   c_hi, c_lo, bv;
    reg [3:0]         r_hi, r_lo;
    integer m, b;

    always @* begin
        c_hi = mx_c1_reg;
        r_hi = 4'd0;
        bv = {LANES{1'b0}};
        for (b = 7; b >= 4; b = b - 1) begin
            for (m = 0; m < LANES; m = m + 1) begin
                bv[m] = mx_a1_reg[m*8 + b];
            end
            r_hi[b-4] = |(c_hi & bv);
            if (r_hi[b-4]) begin
                c_hi = c_hi & bv;
            end
        end
        c_lo = mx_c2_reg;
        r_lo = 4'd0;
        for (b = 3; b >= 0; b = b - 1) begin
            for (m = 0; m < LANES; m = m + 1) begin
                bv[m] = mx_a2_reg[m*4 + b];
            end
            r_lo[b] = |(c_lo & bv);
            if (r_lo[b]) begin
                c_lo = c_lo & bv;
            end
        end
    end

    always @(posedge clk) begin
        for (m = 0; m < LANES; m = m + 1) begin
            mx_a1_reg[m*8 +: 8] <= in_a[m*8 +: 8] ^ 8'h80;
            mx_c1_reg[m] <= |in_w[m*8 +: 8];
            mx_a2_reg[m*4 +: 4] <= mx_a1_reg[m*8 +: 4];
        end
        mx_c2_reg <= c_hi;
        mx_h2_reg <= r_hi;
        mx3_reg <= {~mx_h2_reg[3], mx_h2_reg[2:0], r_lo};
        mx4_reg <= mx3_reg;
    end
end else begin : g_no_max
    always @(posedge clk) begin
        mx4_reg <= 8'h80;
    end
end
endgenerate

// row accumulators: accumulator j loads bias + sum on a row's first group and adds
// the sum on later groups (tree_b_reg is the registered group sum). MAXRED:
// accumulator 0 loads the group maximum when it is the row's first or above the
// row's maximum so far (the sequencer gives MAXRED rows bias 0).
wire [LANES*32-1:0] acc_out;
reg                 out_valid_reg;

wire          mx_take = f4_reg || ($signed(mx4_reg) > $signed(acc_out[7:0]));
wire [SW-1:0] in0     = mx_on ? {{(SW-8){mx4_reg[7]}}, mx4_reg} : tree_b_reg[0 +: SW];

// per accumulator: the addend, the enable and whether the sum starts from the bias
wire [LANES*SW-1:0] acc_in  = {tree_b_reg[LANES*SW-1:SW], in0};
wire [LANES-1:0]    acc_ce  = {{(LANES-1){v4_reg}}, v4_reg && (!mx_on || mx_take)};
wire [LANES-1:0]    acc_ld  = {{(LANES-1){f4_reg}}, f4_reg || mx_on};

always @(posedge clk) begin
    if (rst) begin
        out_valid_reg <= 1'b0;
    end else begin
        out_valid_reg <= v4_reg && l4_reg;
    end
end

`ifdef SYNTHESIS

// In synthesis each accumulator is the ALU of a DSP48E1 (no multiplier): A:B is
// the addend, the P register the accumulator, and the dynamic OPMODE adds the
// addend to C (bias) or to P, so the 32-bit adders and their bias multiplexers
// stay out of the fabric. The DSP adds 48 bits; the low 32 are the int32 sum.
genvar ga;
generate
for (ga = 0; ga < LANES; ga = ga + 1) begin : g_acc
    wire [47:0] ab = {{(48-SW){acc_in[ga*SW+SW-1]}}, acc_in[ga*SW +: SW]};
    wire [47:0] p;
    DSP48E1 #(
        .USE_MULT("NONE"),
        .USE_DPORT("FALSE"),
        .USE_SIMD("ONE48"),
        .A_INPUT("DIRECT"),
        .B_INPUT("DIRECT"),
        .AREG(0), .ACASCREG(0), .BREG(0), .BCASCREG(0),
        .ADREG(0), .DREG(0), .MREG(0), .CREG(0), .PREG(1),
        .OPMODEREG(0), .ALUMODEREG(0), .CARRYINREG(0), .CARRYINSELREG(0), .INMODEREG(0)
    )
    acc_dsp (
        .CLK(clk),
        .A(ab[47:18]),
        .B(ab[17:0]),
        .C({{16{b4_reg[31]}}, b4_reg}),
        .D(25'd0),
        .PCIN(48'd0),
        .ACIN(30'd0),
        .BCIN(18'd0),
        .CARRYCASCIN(1'b0),
        .MULTSIGNIN(1'b0),
        .CARRYIN(1'b0),
        .CARRYINSEL(3'b000),
        .INMODE(5'b00000),
        .ALUMODE(4'b0000),
        .OPMODE(acc_ld[ga] ? 7'b0110011 : 7'b0100011),   // Z = C or P, Y = 0, X = A:B
        .CEA1(1'b0), .CEA2(1'b0), .CEB1(1'b0), .CEB2(1'b0),
        .CEAD(1'b0), .CED(1'b0), .CEM(1'b0), .CEC(1'b0),
        .CEP(acc_ce[ga]),
        .CECTRL(1'b0), .CEALUMODE(1'b0), .CECARRYIN(1'b0), .CEINMODE(1'b0),
        .RSTA(1'b0), .RSTB(1'b0), .RSTC(1'b0), .RSTD(1'b0), .RSTM(1'b0), .RSTP(1'b0),
        .RSTCTRL(1'b0), .RSTALUMODE(1'b0), .RSTALLCARRYIN(1'b0), .RSTINMODE(1'b0),
        .P(p),
        .ACOUT(), .BCOUT(), .PCOUT(), .CARRYOUT(), .CARRYCASCOUT(), .MULTSIGNOUT(),
        .OVERFLOW(), .UNDERFLOW(), .PATTERNDETECT(), .PATTERNBDETECT()
    );
    assign acc_out[ga*32 +: 32] = p[31:0];
end
endgenerate

`else

reg [LANES*32-1:0] acc_reg;

always @(posedge clk) begin
    for (j = 0; j < LANES; j = j + 1) begin
        if (acc_ce[j]) begin
            acc_reg[j*32 +: 32] <= (acc_ld[j] ? b4_reg : acc_reg[j*32 +: 32])
                + {{(32-SW){acc_in[j*SW+SW-1]}}, acc_in[j*SW +: SW]};
        end
    end
end

assign acc_out = acc_reg;

`endif

assign out_valid = out_valid_reg;
assign out_acc   = acc_out;

// lanes run with accumulation off; their own valid/accumulator outputs are spare
wire unused_ok = &{1'b0, prod_valid_unused, acc_valid_unused, acc_unused};

endmodule

`resetall
