// zero_skip_mac.v: signed int8 x int8 multiply-accumulate lane.
//
// Inputs are registered (DSP48E1 A/B registers), the product is registered
// (M register) and, with ACC_ENABLE = 1, accumulated into an ACC_W-bit register
// (P register) on every valid entry: in_clear marks a row's first entry (load
// instead of add), in_last its last one (acc_valid follows with the finished
// sum). Entries that are not valid are skipped: they never touch the
// accumulator.
//
// The engine instantiates it with ACC_ENABLE = 0 as the lane multiplier of the
// P x Q lane array; the segmented adder tree and the P row accumulators of
// sparse_dot_product.v take its registered product.
//
// Latency: prod is valid 2 cycles after the input, acc 3 cycles after.

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zero_skip_mac #
(
    // Accumulator width in bits
    parameter ACC_W      = 32,
    // 1: accumulate the products, 0: product only
    parameter ACC_ENABLE = 1
)
(
    input  wire                    clk,
    input  wire                    rst,

    /*
     * Entry in
     */
    input  wire                    in_valid,
    input  wire                    in_clear,
    input  wire                    in_last,
    input  wire signed [7:0]       in_a,
    input  wire signed [7:0]       in_w,

    /*
     * Registered product (2 cycles after the entry)
     */
    output wire                    prod_valid,
    output wire signed [15:0]      prod,

    /*
     * Row result (3 cycles after the row's last entry)
     */
    output wire                    acc_valid,
    output wire signed [ACC_W-1:0] acc
);

initial begin
    if (ACC_W < 16) begin
        $error("zero_skip_mac: ACC_W must be at least 16 (instance %m)");
        $finish;
    end
end

// stage 1: input registers
reg signed [7:0] a_reg;
reg signed [7:0] w_reg;
reg              v1_reg;
reg              c1_reg;
reg              l1_reg;

// stage 2: product register
reg signed [15:0] prod_reg;
reg               v2_reg;
reg               c2_reg;
reg               l2_reg;

always @(posedge clk) begin
    a_reg    <= in_a;
    w_reg    <= in_w;
    c1_reg   <= in_clear;
    l1_reg   <= in_last;
    prod_reg <= a_reg * w_reg;
    c2_reg   <= c1_reg;
    l2_reg   <= l1_reg;

    if (rst) begin
        v1_reg <= 1'b0;
        v2_reg <= 1'b0;
    end else begin
        v1_reg <= in_valid;
        v2_reg <= v1_reg;
    end
end

assign prod_valid = v2_reg;
assign prod       = prod_reg;

generate

if (ACC_ENABLE != 0) begin : g_acc

    // stage 3: accumulator
    reg signed [ACC_W-1:0] acc_reg;
    reg                    acc_valid_reg;

    always @(posedge clk) begin
        if (v2_reg) begin
            acc_reg <= (c2_reg ? {ACC_W{1'b0}} : acc_reg) + {{(ACC_W-16){prod_reg[15]}}, prod_reg};
        end
        if (rst) begin
            acc_valid_reg <= 1'b0;
        end else begin
            acc_valid_reg <= v2_reg && l2_reg;
        end
    end

    assign acc_valid = acc_valid_reg;
    assign acc       = acc_reg;

end else begin : g_no_acc

    assign acc_valid = 1'b0;
    assign acc       = {ACC_W{1'b0}};

    // clear/last only matter to the accumulator
    wire unused_ok = &{1'b0, c2_reg, l2_reg};

end

endgenerate

endmodule

`resetall
