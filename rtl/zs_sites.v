// zs_sites.v: the site lists of sparse-pixel mode (docs/hardware.md, "Sparse-pixel mode").
//
// Two lists, A (0) and B (1), of SITE_CAP entries {y[7:0], x[7:0], n[2:0]} each, in one
// block RAM of 2 * SITE_CAP words (address {list, index}); a second copy of the RAM gives
// the POOLSITES build its second read port. Three users, never at the same time:
//
//   append   (image input phase) list A[len_a] <= {y, x, 1}
//   build    (POOLSITES, started in the layer's SETUP) one input site per cycle:
//              P0 read in_list[i] (i = 0 in the b_start cycle)   P1 cell = (y>>1, x>>1), read map[cell]
//              P2 read out_list[map[cell]]   P3 hit / append / count
//            The cell map (4K x log2 SITE_CAP, addressed by {cy[5:0], cx[5:0]}, never
//            cleared; the loader limits POOLSITES grids to 64 x 64) holds the index of a
//            cell in out_list; an entry counts only when it is below the list's length
//            and that list entry holds the cell (a "sparse set"). The two writes before
//            P3 are forwarded. A cell's count saturates at 4 (it is only used as min(n, 4)).
//   stream   (SITES iteration and SCRUB) entries in cyclic order 0, 1, .., len-1, 0, ..
//            advanced by st_adv; two stages (RAM read, offsets), so two st_adv pulses
//            after st_reset put entry 0 on the outputs:
//              st_off1 = (y << sh) * rs1 + (x << sh),  st_off2 = y * rs2 + x,  st_n = n
//
// lists_clear holds both lists empty (outside an image's input and layer phases).

// Language: Verilog 2005

`resetall
`timescale 1ns / 1ps
`default_nettype none

module zs_sites #
(
    // Entries per list (power of two, 2..128)
    parameter SITE_CAP = 64,
    // Activation address width
    parameter ADDR_W   = 16
)
(
    input  wire              clk,
    input  wire              rst,
    input  wire              lists_clear,

    /*
     * Input phase: append to list A
     */
    input  wire              app_valid,
    input  wire [7:0]        app_y,
    input  wire [7:0]        app_x,
    output wire [LW-1:0]     len_a,

    /*
     * POOLSITES build
     */
    input  wire              b_start,
    input  wire              b_in_list,
    input  wire              b_out_list,
    input  wire [15:0]       b_h,          // cells with cy >= b_h or cx >= b_w are dropped
    input  wire [15:0]       b_w,          // (used from 3 cycles after b_start; at most 64)
    output wire [LW-1:0]     b_n_in,       // sites of the input list (from the cycle after b_start)

    /*
     * Site stream
     */
    input  wire              st_reset,
    input  wire              st_adv,
    input  wire              st_list,
    input  wire              st_sh,
    input  wire [15:0]       st_rs1,
    input  wire [15:0]       st_rs2,
    output wire [LW-1:0]     st_len,
    output reg  [ADDR_W-1:0] st_off1,
    output reg  [ADDR_W-1:0] st_off2,
    output reg  [2:0]        st_n
);

localparam IW = $clog2(SITE_CAP);
localparam LW = IW + 1;

initial begin
    if (SITE_CAP < 2 || SITE_CAP > 128 || (1 << IW) != SITE_CAP) begin
        $error("zs_sites: SITE_CAP must be a power of two, 2..128 (instance %m)");
        $finish;
    end
end

localparam [31:0] CAP_32 = SITE_CAP;

reg [LW-1:0] len_a_reg, len_b_reg;

/*
 * List RAM (two copies, same writes)
 */
reg             l_we;
reg  [IW:0]     l_waddr;
reg  [18:0]     l_wdata;
wire            l1_rd_en;
wire [IW:0]     l1_rd_addr;
wire [18:0]     l1_rd_data;
wire            l2_rd_en;
wire [IW:0]     l2_rd_addr;
wire [18:0]     l2_rd_data;

zs_sdp_ram #(
    .DEPTH(2 * SITE_CAP),
    .WIDTH(19),
    .RAM_BLOCK(1)
)
list1_inst (
    .clk(clk),
    .wr_en(l_we),
    .wr_addr(l_waddr),
    .wr_data(l_wdata),
    .rd_en(l1_rd_en),
    .rd_addr(l1_rd_addr),
    .rd_data(l1_rd_data)
);

zs_sdp_ram #(
    .DEPTH(2 * SITE_CAP),
    .WIDTH(19),
    .RAM_BLOCK(1)
)
list2_inst (
    .clk(clk),
    .wr_en(l_we),
    .wr_addr(l_waddr),
    .wr_data(l_wdata),
    .rd_en(l2_rd_en),
    .rd_addr(l2_rd_addr),
    .rd_data(l2_rd_data)
);

/*
 * Cell map
 */
reg             m_we;
reg  [11:0]     m_waddr;
reg  [IW-1:0]   m_wdata;
wire [IW-1:0]   m_rd_data;

/*
 * Build pipeline
 */
reg          b_act_reg;
reg          b_il_reg, b_ol_reg;
reg [LW-1:0] b_i_reg, b_n_reg;
reg          p1_v_reg, p2_v_reg, p3_v_reg;
reg [13:0]   p2_cell_reg, p3_cell_reg;
reg [IW-1:0] p3_idx_reg;
reg          w1_v_reg, w2_v_reg;
reg [13:0]   w1_cell_reg, w2_cell_reg;
reg [IW-1:0] w1_idx_reg, w2_idx_reg;
reg [2:0]    w1_n_reg, w2_n_reg;

wire [LW-1:0] b_len_in = b_in_list ? len_b_reg : len_a_reg;
wire          p0_first = b_start && (b_len_in != {LW{1'b0}});
wire          p0       = p0_first || (b_act_reg && (b_i_reg != b_n_reg));

// P1: the cell of the input site
wire [13:0] p1_cell = {l1_rd_data[18:12], l1_rd_data[10:4]};

zs_sdp_ram #(
    .DEPTH(4096),
    .WIDTH(IW),
    .RAM_BLOCK(1)
)
map_inst (
    .clk(clk),
    .wr_en(m_we),
    .wr_addr(m_waddr),
    .wr_data(m_wdata),
    .rd_en(p1_v_reg),
    .rd_addr({p1_cell[12:7], p1_cell[5:0]}),
    .rd_data(m_rd_data)
);

// P3: hit (forwarded from the last two writes, or a valid map entry), append or count
wire [LW-1:0] olen   = b_ol_reg ? len_b_reg : len_a_reg;
wire [6:0]    p3_cy  = p3_cell_reg[13:7];
wire [6:0]    p3_cx  = p3_cell_reg[6:0];
// b_h, b_w <= 64 (checked on load), so their low 8 bits decide
wire          drop   = ({1'b0, p3_cy} >= b_h[7:0]) || ({1'b0, p3_cx} >= b_w[7:0]);
wire          fw1    = w1_v_reg && (w1_cell_reg == p3_cell_reg);
wire          fw2    = w2_v_reg && (w2_cell_reg == p3_cell_reg);
wire          ram_ok = ({1'b0, p3_idx_reg} < olen) && !(w1_v_reg && w1_idx_reg == p3_idx_reg) &&
                       (l2_rd_data[18:3] == {1'b0, p3_cy, 1'b0, p3_cx});
wire          hit    = fw1 || fw2 || ram_ok;
wire [IW-1:0] h_idx  = fw1 ? w1_idx_reg : (fw2 ? w2_idx_reg : p3_idx_reg);
wire [2:0]    h_n    = fw1 ? w1_n_reg : (fw2 ? w2_n_reg : l2_rd_data[2:0]);
wire [2:0]    n_new  = !hit ? 3'd1 : (h_n[2] ? h_n : h_n + 3'd1);
wire [IW-1:0] w_idx  = hit ? h_idx : olen[IW-1:0];
wire          b_wr   = p3_v_reg && !drop;
wire          b_app  = b_wr && !hit;

always @* begin
    l_we = 1'b0;
    l_waddr = {1'b0, len_a_reg[IW-1:0]};
    l_wdata = {app_y, app_x, 3'd1};
    if (b_wr) begin
        l_we = 1'b1;
        l_waddr = {b_ol_reg, w_idx};
        l_wdata = {1'b0, p3_cy, 1'b0, p3_cx, n_new};
    end else if (app_valid) begin
        l_we = 1'b1;
    end
    m_we = b_app;
    m_waddr = {p3_cell_reg[12:7], p3_cell_reg[5:0]};
    m_wdata = olen[IW-1:0];
end

/*
 * Site stream
 */
reg [IW-1:0] sa_reg;

assign st_len = st_list ? len_b_reg : len_a_reg;

wire [IW:0] sa_inc = {1'b0, sa_reg} + {{IW{1'b0}}, 1'b1};

assign l1_rd_en   = p0 || st_adv;
assign l1_rd_addr = b_start ? {b_in_list, {IW{1'b0}}} : (p0 ? {b_il_reg, b_i_reg[IW-1:0]} : {st_list, sa_reg});
assign l2_rd_en   = p2_v_reg;
assign l2_rd_addr = {b_ol_reg, m_rd_data};

wire [7:0] e_y = l1_rd_data[18:11];
wire [7:0] e_x = l1_rd_data[10:3];
wire [8:0] e_ys = st_sh ? {e_y, 1'b0} : {1'b0, e_y};
wire [8:0] e_xs = st_sh ? {e_x, 1'b0} : {1'b0, e_x};
wire [ADDR_W+8:0] prod1 = e_ys * st_rs1[ADDR_W-1:0];
wire [ADDR_W+7:0] prod2 = e_y * st_rs2[ADDR_W-1:0];

always @(posedge clk) begin
    if (st_adv) begin
        st_off1 <= prod1[ADDR_W-1:0] + {{(ADDR_W-9){1'b0}}, e_xs};
        st_off2 <= prod2[ADDR_W-1:0] + {{(ADDR_W-8){1'b0}}, e_x};
        st_n <= l1_rd_data[2:0];
    end
    if (st_reset) begin
        sa_reg <= {IW{1'b0}};
    end else if (st_adv) begin
        sa_reg <= (sa_inc == st_len) ? {IW{1'b0}} : sa_inc[IW-1:0];
    end
end

/*
 * Build control, lengths
 */
always @(posedge clk) begin
    p2_cell_reg <= p1_cell;
    p3_cell_reg <= p2_cell_reg;
    p3_idx_reg <= m_rd_data;
    w1_cell_reg <= p3_cell_reg;
    w1_idx_reg <= w_idx;
    w1_n_reg <= n_new;
    w2_cell_reg <= w1_cell_reg;
    w2_idx_reg <= w1_idx_reg;
    w2_n_reg <= w1_n_reg;
    if (rst) begin
        b_act_reg <= 1'b0;
        p1_v_reg <= 1'b0;
        p2_v_reg <= 1'b0;
        p3_v_reg <= 1'b0;
        w1_v_reg <= 1'b0;
        w2_v_reg <= 1'b0;
    end else begin
        p1_v_reg <= p0;
        p2_v_reg <= p1_v_reg;
        p3_v_reg <= p2_v_reg;
        w1_v_reg <= b_wr;
        w2_v_reg <= w1_v_reg;
        if (b_start) begin
            b_act_reg <= 1'b1;
        end else if (!p0) begin
            b_act_reg <= 1'b0;
        end
    end
    if (b_start) begin
        b_il_reg <= b_in_list;
        b_ol_reg <= b_out_list;
        b_i_reg <= {{IW{1'b0}}, p0_first};
        b_n_reg <= b_len_in;
    end else if (p0) begin
        b_i_reg <= b_i_reg + {{IW{1'b0}}, 1'b1};
    end
    if (rst || lists_clear) begin
        len_a_reg <= {LW{1'b0}};
        len_b_reg <= {LW{1'b0}};
    end else if (b_start) begin
        // the output list starts empty (the input's length is kept in b_n_reg)
        if (b_out_list) begin
            len_b_reg <= {LW{1'b0}};
        end else begin
            len_a_reg <= {LW{1'b0}};
        end
    end else if (b_app) begin
        if (b_ol_reg) begin
            len_b_reg <= len_b_reg + {{IW{1'b0}}, 1'b1};
        end else begin
            len_a_reg <= len_a_reg + {{IW{1'b0}}, 1'b1};
        end
    end else if (app_valid && len_a_reg != CAP_32[LW-1:0]) begin
        len_a_reg <= len_a_reg + {{IW{1'b0}}, 1'b1};
    end
end

assign len_a  = len_a_reg;
assign b_n_in = b_n_reg;

// cells have 7-bit coordinates; the high product bits wrap modulo ACT_BYTES
wire unused_ok = &{1'b0, prod1[ADDR_W+8:ADDR_W], prod2[ADDR_W+7:ADDR_W],
                   st_rs1, st_rs2, e_y[0], e_x[0], b_h[15:8], b_w[15:8]};

endmodule

`resetall
