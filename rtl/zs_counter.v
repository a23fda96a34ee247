// zs_counter.v: one engine counter (CYCLES, STALL, COMPUTE or MACS).
//
//   clr       count <= 0 (priority over ce)
//   ce        count <= count + inc
//
// In synthesis (SYNTHESIS defined) the counter is a DSP48E1 accumulator (P = P + C,
// no multiplier), so its carry chain stays out of the fabric: RSTP is the clear, CEP
// the enable. Elsewhere it is a plain register with an adder; both views count the
// same (the synthesis view is simulated with Yosys's DSP48E1 model, docs/hardware.md).

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zs_counter #
(
    // Counter width in bits (1..48, the DSP48E1 P register)
    parameter WIDTH = 32
)
(
    input  wire             clk,

    /*
     * Control
     */
    input  wire             clr,
    input  wire             ce,
    input  wire [WIDTH-1:0] inc,

    /*
     * Count
     */
    output wire [WIDTH-1:0] count
);

initial begin
    if (WIDTH < 1 || WIDTH > 48) begin
        $error("zs_counter: WIDTH must be 1..48 (instance %m)");
        $finish;
    end
end

`ifdef SYNTHESIS
wire [47:0] p;
wire [47:0] c = {{(48-WIDTH){1'b0}}, inc};

DSP48E1 #(
    .USE_MULT("NONE"), .USE_DPORT("FALSE"), .USE_SIMD("ONE48"),
    .AREG(0), .ACASCREG(0), .BREG(0), .BCASCREG(0),
    .ADREG(0), .DREG(0), .MREG(0), .CREG(0), .PREG(1),
    .OPMODEREG(0), .ALUMODEREG(0), .CARRYINREG(0), .CARRYINSELREG(0), .INMODEREG(0)
)
cnt_dsp (
    .CLK(clk),
    .A(30'd0), .B(18'd0), .C(c), .D(25'd0),
    .PCIN(48'd0), .ACIN(30'd0), .BCIN(18'd0),
    .CARRYCASCIN(1'b0), .MULTSIGNIN(1'b0), .CARRYIN(1'b0), .CARRYINSEL(3'b000),
    .INMODE(5'b00000), .ALUMODE(4'b0000),
    .OPMODE(7'b0101100),   // Z = P, Y = C, X = 0
    .CEA1(1'b0), .CEA2(1'b0), .CEB1(1'b0), .CEB2(1'b0),
    .CEAD(1'b0), .CED(1'b0), .CEM(1'b0), .CEC(1'b0),
    .CEP(ce),
    .CECTRL(1'b0), .CEALUMODE(1'b0), .CECARRYIN(1'b0), .CEINMODE(1'b0),
    .RSTA(1'b0), .RSTB(1'b0), .RSTC(1'b0), .RSTD(1'b0), .RSTM(1'b0), .RSTP(clr),
    .RSTCTRL(1'b0), .RSTALUMODE(1'b0), .RSTALLCARRYIN(1'b0), .RSTINMODE(1'b0),
    .P(p),
    .ACOUT(), .BCOUT(), .PCOUT(), .CARRYOUT(), .CARRYCASCOUT(), .MULTSIGNOUT(),
    .OVERFLOW(), .UNDERFLOW(), .PATTERNDETECT(), .PATTERNBDETECT()
);

assign count = p[WIDTH-1:0];
`else
reg [WIDTH-1:0] count_reg;

always @(posedge clk) begin
    if (clr) begin
        count_reg <= {WIDTH{1'b0}};
    end else if (ce) begin
        count_reg <= count_reg + inc;
    end
end

assign count = count_reg;
`endif

endmodule

`resetall
