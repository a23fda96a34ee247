// zs_requant.v: requantisation of N finished rows of one output channel.
//
//   y = (acc * M + 2^(S-1)) >>> S      (48-bit product x, round half up)
//   y = max(y, 0) if ReLU;  y = min(max(y, -128), 127)
//
// The shift is done in two steps: a coarse select of the 25-bit window
// w = x[16a +: 25] with a = (S-1) >> 4 (exact whenever the bits of x above the
// window are copies of its sign; otherwise the result saturates), then, on a
// DSP, f = w * 2^(15-b) + 2^15 with b = (S-1) & 15: bit 15 of w * 2^(15-b) is
// x[S-1], so the post-adder's 2^15 is the rounding term 2^(S-1), and
// (x + 2^(S-1)) >>> S = f >>> 16 (the bits of x below the window cannot carry
// into bit S). The result is f[23:16] unless f[41:23] are not all sign copies
// (saturate).
//
// Latency 3: in_* at cycle u, out_valid/out_y at u + 3
//   u+1 products acc * M, u+2 coarse windows, u+3 results.

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zs_requant #
(
    // Pixels per cycle (one channel: common M, S, ReLU)
    parameter N = 8
)
(
    input  wire             clk,
    input  wire             rst,

    input  wire             in_valid,
    input  wire [N*32-1:0]  in_acc,
    input  wire [15:0]      in_m,
    input  wire [5:0]       in_s,
    input  wire             in_relu,

    output wire             out_valid,
    output wire [N*8-1:0]   out_y
);

initial begin
    if (N < 1) begin
        $error("zs_requant: N must be at least 1 (instance %m)");
        $finish;
    end
end

integer n;

/*
 * Stage 1: products (DSP)
 */
reg [N*48-1:0] prod_reg;
reg [5:0]      sh1_reg;      // S - 1
reg            relu1_reg;
reg            v1_reg;

wire [N*49-1:0] prod_full;
wire [N-1:0]    prod_top_unused;

genvar gn;
generate
for (gn = 0; gn < N; gn = gn + 1) begin : g_mul
    assign prod_full[gn*49 +: 49] = $signed(in_acc[gn*32 +: 32]) * $signed({1'b0, in_m});
    assign prod_top_unused[gn] = prod_full[gn*49 + 48];
end
endgenerate

always @(posedge clk) begin
    for (n = 0; n < N; n = n + 1) begin
        prod_reg[n*48 +: 48] <= prod_full[n*49 +: 48];
    end
    sh1_reg   <= in_s - 6'd1;
    relu1_reg <= in_relu;
    if (rst) begin
        v1_reg <= 1'b0;
    end else begin
        v1_reg <= in_valid;
    end
end

/*
 * Stage 2: coarse window x[16a +: 25] and the check of the bits above it
 */
reg [N*25-1:0] win_reg;
reg [N-1:0]    above_bad_reg;   // a bit above the window differs from the sign
reg [N-1:0]    sign_reg;
reg [16:0]     onehot_reg;      // 2^(15 - b)
reg            relu2_reg;
reg            v2_reg;

reg [N*25-1:0] win_next;
reg [N-1:0]    above_next;
reg [47:0]     x;
reg [56:0]     xe;

always @* begin
    win_next = {N*25{1'b0}};
    above_next = {N{1'b0}};
    x = 48'd0;
    xe = 57'd0;
    for (n = 0; n < N; n = n + 1) begin
        x = prod_reg[n*48 +: 48];
        xe = {{9{x[47]}}, x};
        case (sh1_reg[5:4])
            2'd0: begin
                win_next[n*25 +: 25] = xe[0 +: 25];
                above_next[n] = (x[47:24] != {24{x[47]}});
            end
            2'd1: begin
                win_next[n*25 +: 25] = xe[16 +: 25];
                above_next[n] = (x[47:40] != {8{x[47]}});
            end
            default: begin
                win_next[n*25 +: 25] = xe[32 +: 25];
                above_next[n] = 1'b0;
            end
        endcase
    end
end

always @(posedge clk) begin
    win_reg <= win_next;
    above_bad_reg <= above_next;
    for (n = 0; n < N; n = n + 1) begin
        sign_reg[n] <= prod_reg[n*48 + 47];
    end
    onehot_reg <= 17'd1 << (4'd15 - sh1_reg[3:0]);
    relu2_reg <= relu1_reg;
    if (rst) begin
        v2_reg <= 1'b0;
    end else begin
        v2_reg <= v1_reg;
    end
end

/*
 * Stage 3: fine shift (DSP), round, saturate, ReLU
 */
reg [N*8-1:0] y_reg;
reg           v3_reg;

wire [N*42-1:0] fine;
wire [N*16-1:0] fine_low_unused;

generate
for (gn = 0; gn < N; gn = gn + 1) begin : g_fine
    // rounding term on the DSP post-adder
    assign fine[gn*42 +: 42] = $signed(win_reg[gn*25 +: 25]) * $signed({1'b0, onehot_reg}) + 42'sd32768;
    assign fine_low_unused[gn*16 +: 16] = fine[gn*42 +: 16];
end
endgenerate

reg [N*8-1:0] y_next;
reg [41:16]   f;
reg [7:0]     y8;
reg           hi_bad;

always @* begin
    y_next = {N*8{1'b0}};
    f = 26'd0; y8 = 8'd0; hi_bad = 1'b0;
    for (n = 0; n < N; n = n + 1) begin
        f = fine[n*42+16 +: 26];
        // the rounded x >>> S fits in int8 when every bit from S+7 up is a sign copy
        hi_bad = above_bad_reg[n] || (f[40:23] != {18{f[41]}});
        if (hi_bad) begin
            y8 = sign_reg[n] ? 8'h80 : 8'h7f;
        end else begin
            y8 = f[23:16];
        end
        if (relu2_reg && y8[7]) begin
            y8 = 8'h00;
        end
        y_next[n*8 +: 8] = y8;
    end
end

always @(posedge clk) begin
    y_reg <= y_next;
    if (rst) begin
        v3_reg <= 1'b0;
    end else begin
        v3_reg <= v2_reg;
    end
end

assign out_valid = v3_reg;
assign out_y     = y_reg;

// |acc * M| < 2^47: the 49th product bit is a sign copy
wire unused_ok = &{1'b0, prod_top_unused, fine_low_unused};

endmodule

`resetall
