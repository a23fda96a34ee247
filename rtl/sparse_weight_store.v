// sparse_weight_store.v: the engine's weight store.
//
// DEPTH words of WIDTH bits; the engine uses WIDTH = LANES * 24 and packs the
// store entries of one word side by side, lane slot 0 in the least significant
// bits, each entry {offset[15:0], weight[7:0]} (docs/hardware.md, "Weight store
// placement"). A bundle's weight_store.hex holds one word per line in this
// layout, so INIT_FILE can preload a store for block-level tests or a fixed
// model. Write port from the program loader (one enable per entry, so a run of
// entries is written without touching its neighbours), registered read port for
// the layer sequencer (one word per cycle).

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module sparse_weight_store #
(
    // Number of words (weight slots / LANES)
    parameter DEPTH     = 2048,
    // Bits per word (LANES * 24)
    parameter WIDTH     = 192,
    // Bits per store entry (one write enable each)
    parameter ENTRY_W   = 24,
    // Optional $readmemh file with one word per line ("" for none)
    parameter INIT_FILE = ""
)
(
    input  wire             clk,

    /*
     * Write port (program loader)
     */
    input  wire [WIDTH/ENTRY_W-1:0] wr_en,
    input  wire [AW-1:0]    wr_addr,
    input  wire [WIDTH-1:0] wr_data,

    /*
     * Read port (sequencer), data valid the cycle after rd_en
     */
    input  wire             rd_en,
    input  wire [AW-1:0]    rd_addr,
    output wire [WIDTH-1:0] rd_data
);

localparam AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;

zs_sdp_ram #(
    .DEPTH(DEPTH),
    .WIDTH(WIDTH),
    .INIT_FILE(INIT_FILE),
    .WE_W(WIDTH / ENTRY_W)
)
mem_inst (
    .clk(clk),
    .wr_en(wr_en),
    .wr_addr(wr_addr),
    .wr_data(wr_data),
    .rd_en(rd_en),
    .rd_addr(rd_addr),
    .rd_data(rd_data)
);

endmodule

`resetall
