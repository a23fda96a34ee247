/*
 * sim_dma.v: simulation-only model of an AXI DMA in simple mode, with beat memories.
 *
 * The sim backend (zeroskip.tb.sim_server) hands the memories over in bulk as $readmemh /
 * $writememh files and waits for a single completion edge, so no Python code runs per
 * clock cycle during a transfer.
 *
 *   MM2S: toggling mm2s_req loads mm2s_mem from MM2S_FILE and streams beats
 *         0 .. mm2s_beats-1 at one beat per cycle (as fast as tready allows), TLAST on
 *         the last beat; mm2s_done rises after the last handshake.
 *   S2MM: toggling s2mm_req arms a receive of at most s2mm_cap beats into s2mm_mem;
 *         after a beat with TLAST the beats received are written to S2MM_FILE and
 *         s2mm_done rises (one cycle later); s2mm_count holds the beats written.
 *         Like the real core, the channel completes only on TLAST: when the buffer is
 *         full without TLAST, tready stays low and the transfer never completes.
 *
 * A request is a level change (toggle), so the server writes each control signal once.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module sim_dma #(
    // stream width in bits
    parameter DATA_WIDTH = 64,
    // beats per memory
    parameter MEM_BEATS = 65536,
    // beat address width
    parameter ADDR_WIDTH = $clog2(MEM_BEATS),
    // file a MM2S start loads the memory from ($readmemh, relative to the simulator's cwd)
    parameter MM2S_FILE = "zs_mm2s.hex",
    // file a completed S2MM transfer is written to ($writememh)
    parameter S2MM_FILE = "zs_s2mm.hex"
)
(
    input  wire                   clk,
    input  wire                   rst,

    /*
     * Control (from the sim server)
     */
    input  wire                   mm2s_req,
    input  wire [ADDR_WIDTH:0]    mm2s_beats,
    output reg                    mm2s_done,
    input  wire                   s2mm_req,
    input  wire [ADDR_WIDTH:0]    s2mm_cap,
    output reg                    s2mm_done,
    output reg  [ADDR_WIDTH:0]    s2mm_count,

    /*
     * MM2S stream out
     */
    output wire [DATA_WIDTH-1:0]  m_axis_tdata,
    output wire                   m_axis_tvalid,
    input  wire                   m_axis_tready,
    output wire                   m_axis_tlast,

    /*
     * S2MM stream in
     */
    input  wire [DATA_WIDTH-1:0]  s_axis_tdata,
    input  wire                   s_axis_tvalid,
    output wire                   s_axis_tready,
    input  wire                   s_axis_tlast
);

initial begin
    if (MEM_BEATS != (1 << ADDR_WIDTH)) begin
        $error("Error: MEM_BEATS must be a power of two (instance %m)");
        $finish;
    end
end

reg [DATA_WIDTH-1:0] mm2s_mem [0:MEM_BEATS-1];
reg [DATA_WIDTH-1:0] s2mm_mem [0:MEM_BEATS-1];

reg                  mm2s_ack_reg = 1'b0;
reg                  mm2s_busy_reg = 1'b0;
reg [ADDR_WIDTH:0]   mm2s_ptr_reg = 0;
reg [ADDR_WIDTH:0]   mm2s_len_reg = 0;

reg                  s2mm_ack_reg = 1'b0;
reg                  s2mm_busy_reg = 1'b0;
reg                  s2mm_dump_reg = 1'b0;
reg [ADDR_WIDTH:0]   s2mm_cap_reg = 0;

assign m_axis_tdata  = mm2s_mem[mm2s_ptr_reg[ADDR_WIDTH-1:0]];
assign m_axis_tvalid = mm2s_busy_reg;
assign m_axis_tlast  = mm2s_busy_reg && (mm2s_ptr_reg + 1'b1 == mm2s_len_reg);

assign s_axis_tready = s2mm_busy_reg && (s2mm_count < s2mm_cap_reg);

always @(posedge clk) begin
    // MM2S
    if (mm2s_req != mm2s_ack_reg) begin
        $readmemh(MM2S_FILE, mm2s_mem, 0, mm2s_beats - 1);
        mm2s_ack_reg  <= mm2s_req;
        mm2s_ptr_reg  <= 0;
        mm2s_len_reg  <= mm2s_beats;
        mm2s_busy_reg <= mm2s_beats != 0;
        mm2s_done     <= 1'b0;
    end else if (mm2s_busy_reg && m_axis_tready) begin
        mm2s_ptr_reg <= mm2s_ptr_reg + 1'b1;
        if (m_axis_tlast) begin
            mm2s_busy_reg <= 1'b0;
            mm2s_done     <= 1'b1;
        end
    end

    // S2MM
    if (s2mm_req != s2mm_ack_reg) begin
        s2mm_ack_reg  <= s2mm_req;
        s2mm_cap_reg  <= s2mm_cap;
        s2mm_count    <= 0;
        s2mm_busy_reg <= 1'b1;
        s2mm_dump_reg <= 1'b0;
        s2mm_done     <= 1'b0;
    end else if (s2mm_dump_reg) begin
        $writememh(S2MM_FILE, s2mm_mem, 0, s2mm_count - 1);
        s2mm_dump_reg <= 1'b0;
        s2mm_done     <= 1'b1;
    end else if (s_axis_tvalid && s_axis_tready) begin
        s2mm_mem[s2mm_count[ADDR_WIDTH-1:0]] <= s_axis_tdata;
        s2mm_count <= s2mm_count + 1'b1;
        if (s_axis_tlast) begin
            s2mm_busy_reg <= 1'b0;
            s2mm_dump_reg <= 1'b1;
        end
    end

    if (rst) begin
        mm2s_ack_reg  <= mm2s_req;
        mm2s_busy_reg <= 1'b0;
        mm2s_done     <= 1'b0;
        s2mm_ack_reg  <= s2mm_req;
        s2mm_busy_reg <= 1'b0;
        s2mm_dump_reg <= 1'b0;
        s2mm_done     <= 1'b0;
        s2mm_count    <= 0;
    end
end

endmodule

`resetall
