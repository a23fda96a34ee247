// zs_sdp_ram.v: simple dual-port RAM (one write port, one registered read port).
//
// The engine's memories (activation banks, channel records, layer descriptors,
// results) are instances of this module; the registered read lets synthesis map
// every array of useful size onto block RAM. Contents start at zero; INIT_FILE
// names an optional $readmemh file loaded over them (words past its end stay 0). WE_W > 1 splits the write enable into equal
// segments (the weight store writes single 24-bit entries).

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zs_sdp_ram #
(
    // Number of words
    parameter DEPTH     = 512,
    // Bits per word
    parameter WIDTH     = 36,
    // Optional $readmemh initialisation file ("" leaves the memory zeroed)
    parameter INIT_FILE = "",
    // Write-enable segments per word (each WIDTH / WE_W bits wide)
    parameter WE_W      = 1,
    // 1 forces block RAM (small memories would become LUT RAM), 0 lets synthesis pick
    parameter RAM_BLOCK = 0
)
(
    input  wire             clk,

    /*
     * Write port
     */
    input  wire [WE_W-1:0]  wr_en,
    input  wire [AW-1:0]    wr_addr,
    input  wire [WIDTH-1:0] wr_data,

    /*
     * Read port: rd_data holds mem[rd_addr] of the last cycle with rd_en
     */
    input  wire             rd_en,
    input  wire [AW-1:0]    rd_addr,
    output wire [WIDTH-1:0] rd_data
);

localparam AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;

initial begin
    if (DEPTH < 1 || WIDTH < 1 || WE_W < 1 || WIDTH % WE_W != 0) begin
        $error("zs_sdp_ram: DEPTH, WIDTH >= 1 and WIDTH a multiple of WE_W (instance %m)");
        $finish;
    end
end

localparam SEG = WIDTH / WE_W;

reg [WIDTH-1:0] rd_data_reg;

generate
if (RAM_BLOCK != 0) begin : g_block
    (* ram_style = "block" *)
    reg [WIDTH-1:0] mem [0:DEPTH-1];
    integer i, s;
    initial begin
        for (i = 0; i < DEPTH; i = i + 1) begin
            mem[i] = {WIDTH{1'b0}};
        end
        if (INIT_FILE != "") begin
            $readmemh(INIT_FILE, mem);
        end
    end
    always @(posedge clk) begin
        for (s = 0; s < WE_W; s = s + 1) begin
            if (wr_en[s]) begin
                mem[wr_addr][s*SEG +: SEG] <= wr_data[s*SEG +: SEG];
            end
        end
        if (rd_en) begin
            rd_data_reg <= mem[rd_addr];
        end
    end
end else begin : g_auto
    reg [WIDTH-1:0] mem [0:DEPTH-1];
    integer i, s;
    initial begin
        for (i = 0; i < DEPTH; i = i + 1) begin
            mem[i] = {WIDTH{1'b0}};
        end
        if (INIT_FILE != "") begin
            $readmemh(INIT_FILE, mem);
        end
    end
    always @(posedge clk) begin
        for (s = 0; s < WE_W; s = s + 1) begin
            if (wr_en[s]) begin
                mem[wr_addr][s*SEG +: SEG] <= wr_data[s*SEG +: SEG];
            end
        end
        if (rd_en) begin
            rd_data_reg <= mem[rd_addr];
        end
    end
end
endgenerate

assign rd_data = rd_data_reg;

endmodule

`resetall
