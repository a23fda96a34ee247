// zs_delay.v: fixed-latency pipeline of plain registers (no reset), used for the
// per-tile fields that travel alongside the datapath.

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zs_delay #
(
    // Width in bits
    parameter WIDTH = 8,
    // Cycles of delay (at least 1)
    parameter DEPTH = 1
)
(
    input  wire             clk,
    input  wire [WIDTH-1:0] in_data,
    output wire [WIDTH-1:0] out_data
);

initial begin
    if (DEPTH < 1 || WIDTH < 1) begin
        $error("zs_delay: WIDTH and DEPTH must be at least 1 (instance %m)");
        $finish;
    end
end

reg [WIDTH*DEPTH-1:0] pipe_reg;

generate
if (DEPTH == 1) begin : g_one
    always @(posedge clk) begin
        pipe_reg <= in_data;
    end
end else begin : g_many
    always @(posedge clk) begin
        pipe_reg <= {pipe_reg[WIDTH*(DEPTH-1)-1:0], in_data};
    end
end
endgenerate

assign out_data = pipe_reg[WIDTH*DEPTH-1 -: WIDTH];

endmodule

`resetall
