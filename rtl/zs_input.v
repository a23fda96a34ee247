// zs_input.v: the input phase of an image: stream beats into activation-memory writes.
//
// The engine (zs_engine, state INPUT) hands over each accepted beat of an image
// (beat); this module checks it, holds it while it is written out, and asks the
// engine to hold the stream meanwhile (held). Input modes (program header):
//   dense   CHUNK = min(8, LANES) bytes per cycle from in_base, 8 / CHUNK cycles
//           per beat; bytes past in_bytes in the last beat are not written
//   mode 1  (SITE_CAP > 0) dense image, 8 cycles per beat, one byte per cycle; an
//           interior byte above the threshold is kept and appended to site list A
//           while fewer than n_max are listed, other interior bytes are written as 0
//   mode 2  (SITE_CAP > 0) beat 0 [7:0] = n, then n site beats {c values, x, y}:
//           C_in cycles each, channel c at interior + c * ch_stride + y * row_stride + x
// Checks of an accepted beat (the engine answers the first that fails, in this
// order): bad_n (mode 2: n > n_max), in_short (TLAST before the batch's last beat),
// in_long (no TLAST on it), bad_site (mode 2: y or x off the map).
// img_done marks the cycle of an image's last write; img_start (first image of a
// command, or the next image of the batch) rewinds the write position.
// docs/hardware.md, "Input packet" and "Sparse-pixel mode".

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zs_input #
(
    // MAC lanes (a power of two, at least 4)
    parameter LANES     = 8,
    // Activation memory bytes (power of two, at most 65536)
    parameter ACT_BYTES = 65536,
    // Entries per site list (0: dense input only)
    parameter SITE_CAP  = 64
)
(
    input  wire                         clk,
    input  wire                         rst,

    /*
     * Control
     */
    input  wire                         img_start,    // an image follows: rewind the write position
    input  wire                         last_image,   // the image is the batch's last
    output wire                         img_done,     // the image's last write is this cycle

    /*
     * Program header fields (zs_loader)
     */
    input  wire [1:0]                   prog_in_mode,
    input  wire [ADDR_W-1:0]           prog_in_base,
    input  wire [16:0]                  prog_in_bytes,
    input  wire [7:0]                   prog_n_max,
    input  wire [7:0]                   prog_thr,
    input  wire [3:0]                   prog_c_in,
    input  wire [3:0]                   prog_pad,
    input  wire [15:0]                  prog_h0,
    input  wire [15:0]                  prog_w0,
    input  wire [ADDR_W-1:0]           prog_rs0,
    input  wire [ADDR_W-1:0]           prog_cs0,
    input  wire [ADDR_W-1:0]           prog_interior,

    /*
     * Input stream: beat is an accepted beat of the image (INPUT state)
     */
    input  wire [63:0]                  s_tdata,
    input  wire                         s_tlast,
    input  wire                         beat,
    output wire                         held,         // a beat is being written: hold the stream

    /*
     * Checks of the beat (meaningful with beat)
     */
    output wire                         bad_n,
    output wire                         in_short,
    output wire                         in_long,
    output wire                         bad_site,

    /*
     * Activation memory write
     */
    output reg  [LANES-1:0]             wr_en,
    output reg  [ADDR_W-1:0]           wr_addr,
    output reg  [LANES*8-1:0]           wr_data,

    /*
     * Site list A (zs_sites): appends of the sparse-pixel input modes
     */
    output wire                         app_valid,
    output wire [7:0]                   app_y,
    output wire [7:0]                   app_x,
    input  wire [SW_LW-1:0]            len_a
);

localparam ADDR_W   = $clog2(ACT_BYTES);
localparam SW_LW    = (SITE_CAP > 1) ? $clog2(SITE_CAP) + 1 : 1;
localparam BEAT_CYC = (LANES >= 8) ? 1 : 8 / LANES;   // cycles per dense beat
localparam CHUNK    = 8 / BEAT_CYC;                    // dense bytes written per cycle
localparam SP       = (SITE_CAP > 0) ? 1 : 0;

initial begin
    if (LANES < 4 || (1 << $clog2(LANES)) != LANES) begin
        $error("zs_input: LANES must be a power of two, at least 4 (instance %m)");
        $finish;
    end
    if ((1 << ADDR_W) != ACT_BYTES || ACT_BYTES > 65536) begin
        $error("zs_input: ACT_BYTES must be a power of two, at most 65536 (instance %m)");
        $finish;
    end
end

wire mode1 = (SP != 0) && (prog_in_mode == 2'd1);
wire mode2 = (SP != 0) && (prog_in_mode == 2'd2);

reg [13:0]       in_beat_reg;       // beat of the image (dense, mode 1)
reg [16:0]       in_off_reg;        // next byte of the image
reg [17:0]       in_rem_reg;        // in_bytes - in_off (negative in the padding of the last beat)
reg [2:0]        hcnt_reg;          // cycles left on the accepted beat (stream held)
reg [2:0]        bidx_reg;          // byte of the held beat (sparse-pixel modes)
reg              img_end_reg;       // the held beat is the image's last
reg [63:0]       hold_reg;
reg              m2_b0_reg;         // mode 2: the next beat is an image's beat 0
reg [7:0]        m2_left_reg;       // mode 2: site beats left in the image
reg [15:0]       col_reg, row_reg, r_reg;   // mode 1: position in the grid
reg [ADDR_W-1:0] m2_addr_reg;       // mode 2: address of the next channel of the site

wire [13:0] in_beats      = prog_in_bytes[16:3] + {13'd0, |prog_in_bytes[2:0]};
wire [7:0]  m2_n          = s_tdata[7:0];
wire        img_last_beat = mode2 ? (m2_b0_reg ? (m2_n == 8'd0) : (m2_left_reg == 8'd1))
                                  : (in_beat_reg == in_beats - 14'd1);
wire        batch_last_beat = img_last_beat && last_image;

wire in_rem_full = !in_rem_reg[17] && (in_rem_reg[16:4] != 13'd0);   // 16 or more bytes left

// checks of the beat, in order
wire [7:0] m2_y     = s_tdata[7:0];
wire [7:0] m2_x     = s_tdata[15:8];
assign bad_n        = mode2 && m2_b0_reg && (m2_n > prog_n_max);
assign in_short     = s_tlast && !batch_last_beat;
assign in_long      = !s_tlast && batch_last_beat;
assign bad_site     = mode2 && !m2_b0_reg && ({8'd0, m2_y} >= prog_h0 || {8'd0, m2_x} >= prog_w0);
wire   beat_ok      = beat && !(bad_n || in_short || in_long || bad_site);

// cycles the accepted beat holds the stream after its first
localparam [31:0] HOLD_32    = BEAT_CYC - 1;
localparam [2:0]  HOLD_DENSE = HOLD_32[2:0];
wire [2:0] hold_n = mode1 ? 3'd7 : (mode2 ? (m2_b0_reg ? 3'd0 : prog_c_in[2:0] - 3'd1) : HOLD_DENSE);
assign     held   = (hcnt_reg != 3'd0);
wire       proc   = held || beat_ok;                  // a part of a beat is written this cycle
wire       beat_last_cyc = held ? (hcnt_reg == 3'd1) : (beat_ok && hold_n == 3'd0);
assign     img_done = beat_last_cyc && (held ? img_end_reg : img_last_beat);

// sparse-pixel modes: one byte per cycle
wire [63:0] cur   = held ? hold_reg : s_tdata;
wire [2:0]  bsel  = (held ? bidx_reg : 3'd0) + (mode2 ? 3'd2 : 3'd0);
reg  [7:0]  sbyte;
integer k;

always @* begin
    sbyte = 8'd0;
    for (k = 0; k < 8; k = k + 1) begin
        if (bsel == k[2:0]) begin
            sbyte = cur[k*8 +: 8];
        end
    end
end

// mode 1: grid position of the byte (pos mod ch_stride, then row and column)
wire [16:0] col_inc = {1'b0, col_reg} + 17'd1;
wire [16:0] r_inc   = {1'b0, r_reg} + 17'd1;
wire        r_wrap  = (r_inc == {{(17-ADDR_W){1'b0}}, prog_cs0}) || (prog_cs0 == {ADDR_W{1'b0}});
wire        c_wrap  = (col_inc == {{(17-ADDR_W){1'b0}}, prog_rs0}) || (prog_rs0 == {ADDR_W{1'b0}});
wire [16:0] ry      = {1'b0, row_reg} - {13'd0, prog_pad};
wire [16:0] rx      = {1'b0, col_reg} - {13'd0, prog_pad};
wire        interior = !ry[16] && (ry[15:0] < prog_h0) && !rx[16] && (rx[15:0] < prog_w0);
wire        in_byte  = !in_rem_reg[17] && (in_rem_reg[16:0] != 17'd0);
wire        kept     = interior && ($signed(sbyte) > $signed(prog_thr)) && ({{(8-SW_LW){1'b0}}, len_a} < prog_n_max);

// mode 2: the site's address; channel c follows at + c * ch_stride
wire [ADDR_W+7:0]  m2_prod = m2_y * prog_rs0;
wire [ADDR_W-1:0]  m2_base = prog_interior + m2_prod[ADDR_W-1:0] + {{(ADDR_W-8){1'b0}}, m2_x};

assign app_valid = (mode1 && proc && in_byte && kept) || (mode2 && beat_ok && !m2_b0_reg);
assign app_y     = mode2 ? m2_y : ry[7:0];
assign app_x     = mode2 ? m2_x : rx[7:0];

always @* begin
    wr_en = {LANES{1'b0}};
    wr_addr = prog_in_base + in_off_reg[ADDR_W-1:0];
    wr_data = {LANES*8{1'b0}};
    if (mode1) begin
        wr_data[7:0] = (interior && !kept) ? 8'd0 : sbyte;
        wr_en[0] = proc && in_byte;
    end else if (mode2) begin
        wr_addr = held ? m2_addr_reg : m2_base;
        wr_data[7:0] = sbyte;
        wr_en[0] = held || (beat_ok && !m2_b0_reg);
    end else begin
        // one chunk of the beat: accepted now or held
        for (k = 0; k < CHUNK; k = k + 1) begin
            wr_data[k*8 +: 8] = held ? hold_reg[(8-CHUNK+k)*8 +: 8] : s_tdata[k*8 +: 8];
            wr_en[k] = proc && !in_rem_reg[17] && (in_rem_full || in_rem_reg[3:0] > k[3:0]);
        end
    end
end

localparam [31:0] CHUNK_32 = CHUNK;
localparam [16:0] CHUNK_17 = CHUNK_32[16:0];

always @(posedge clk) begin
    if (rst) begin
        hcnt_reg <= 3'd0;
    end else if (img_start) begin
        in_beat_reg <= 14'd0;
        in_off_reg <= 17'd0;
        in_rem_reg <= {1'b0, prog_in_bytes};
        hcnt_reg <= 3'd0;
        m2_b0_reg <= 1'b1;
        col_reg <= 16'd0;
        row_reg <= 16'd0;
        r_reg <= 16'd0;
    end else begin
        if (held) begin
            hcnt_reg <= hcnt_reg - 3'd1;
            bidx_reg <= bidx_reg + 3'd1;
        end else if (beat_ok) begin
            in_beat_reg <= img_last_beat ? 14'd0 : in_beat_reg + 14'd1;
            m2_b0_reg <= img_last_beat;
            m2_left_reg <= m2_b0_reg ? m2_n : m2_left_reg - 8'd1;
            img_end_reg <= img_last_beat;
            hold_reg <= s_tdata;
            hcnt_reg <= hold_n;
            bidx_reg <= 3'd1;
        end
        // write position: CHUNK bytes per dense chunk, one byte in mode 1
        if (proc) begin
            in_off_reg <= in_off_reg + (mode1 ? 17'd1 : CHUNK_17);
            in_rem_reg <= in_rem_reg - (mode1 ? 18'd1 : {1'b0, CHUNK_17});
            m2_addr_reg <= wr_addr + prog_cs0;
            if (r_wrap) begin
                r_reg <= 16'd0;
                col_reg <= 16'd0;
                row_reg <= 16'd0;
            end else begin
                r_reg <= r_inc[15:0];
                if (c_wrap) begin
                    col_reg <= 16'd0;
                    row_reg <= row_reg + 16'd1;
                end else begin
                    col_reg <= col_inc[15:0];
                end
            end
        end
    end
end

// product bits above the address width; C_in <= 6 (checked on load)
wire unused_ok = &{1'b0, m2_prod[ADDR_W+7:ADDR_W], prog_c_in[3]};

endmodule

`resetall
