// zs_contract.vh: generated from driver/contract.json by
//   python -m zeroskip.driver.contract --write-verilog
// Do not edit; edit the JSON and regenerate (tests/test_contract.py checks it).
`ifndef ZS_CONTRACT_VH
`define ZS_CONTRACT_VH
`define ZS_FORMAT_VERSION 16'd2
`define ZS_RTL_VERSION 16'd3
`define ZS_ID_MAGIC 32'h5A534B50
`define ZS_PROGRAM_MAGIC 32'h5A534B50
`define ZS_ACK_MAGIC 32'h5A534B41
`define ZS_ERR_MAGIC 32'h5A534B45
`define ZS_REG_ID 8'h00  // ro: 0x5A534B50 ('ZSKP')
`define ZS_REG_VERSION 8'h04  // ro: [15:0] program format version, [31:16] RTL version
`define ZS_REG_CONFIG0 8'h08  // ro: [7:0] LANES, [15:8] log2(ACT_BYTES), [16] sparse-pixel support (built with SITE_CAP > 0; SITE_CAP itself is in CONFIG3), [17] fault injection built in
`define ZS_REG_CONFIG1 8'h0C  // ro: W_SLOTS: weight-store capacity in entries
`define ZS_REG_CONFIG2 8'h10  // ro: [15:0] CH_CAP channel records, [31:16] OUT_CAP output values per image
`define ZS_REG_CTRL 8'h14  // wo: write 1 to a bit: [0] LOAD arm program load, [1] RUN arm inference of BATCH images, [2] SOFT_RESET (keeps a loaded program)
`define ZS_REG_STATUS 8'h18  // ro: [0] busy, [1] done (sticky until next command), [2] error, [3] program valid, [15:8] error code, [19:16] state
`define ZS_REG_BATCH 8'h1C  // rw: images per RUN (1..65535)
`define ZS_REG_CYCLES 8'h20  // ro: cycles from the RUN (or LOAD) command to the last output beat, inclusive
`define ZS_REG_STALL 8'h24  // ro: of CYCLES, the cycles spent waiting for s_axis_tvalid or m_axis_tready
`define ZS_REG_COMPUTE 8'h28  // ro: of CYCLES, the cycles in layer phases (setup, clear, issue, fill)
`define ZS_REG_MACS 8'h2C  // ro: useful MACs issued in the last RUN (non-zero weight, valid output pixel)
`define ZS_REG_IRQ_EN 8'h30  // rw: [0] done, [1] error
`define ZS_REG_IRQ_STATUS 8'h34  // rw1c: [0] done, [1] error; write 1 to clear
`define ZS_REG_ERR_INFO 8'h38  // ro: index of the stream beat at which the last error was detected
`define ZS_REG_FAULT 8'h3C  // rw: test-only fault injection (present when FAULT_INJECT=1): [0] suppress TLAST on result streams
`define ZS_REG_CONFIG3 8'h40  // ro: [7:0] MAX_LAYERS layer descriptors, [15:8] SITE_CAP entries per site list (0: built without sparse-pixel mode)
`define ZS_CTRL_LOAD 0
`define ZS_CTRL_RUN 1
`define ZS_CTRL_SOFT_RESET 2
`define ZS_STATUS_BUSY 0
`define ZS_STATUS_DONE 1
`define ZS_STATUS_ERROR 2
`define ZS_STATUS_PROGRAM_VALID 3
`define ZS_ERR_OK 8'd0
`define ZS_ERR_BAD_MAGIC 8'd1
`define ZS_ERR_BAD_VERSION 8'd2
`define ZS_ERR_CONFIG_MISMATCH 8'd3
`define ZS_ERR_CAPACITY 8'd4
`define ZS_ERR_TRUNCATED 8'd5
`define ZS_ERR_TOO_LONG 8'd6
`define ZS_ERR_BAD_LAYER 8'd7
`define ZS_ERR_NO_PROGRAM 8'd8
`define ZS_ERR_INPUT_SHORT 8'd9
`define ZS_ERR_INPUT_LONG 8'd10
`define ZS_ERR_BANK_CONFLICT 8'd11
`define ZS_ERR_UNEXPECTED 8'd12
`define ZS_ERR_BAD_SITES 8'd13
`define ZS_FLAG_RELU 0
`define ZS_FLAG_POOL 1
`define ZS_FLAG_OUT 2
`define ZS_FLAG_SITES 3
`define ZS_FLAG_MAXRED 4
`define ZS_FLAG_AVG 5
`define ZS_FLAG_POOLSITES 6
`define ZS_FLAG_SCRUB 7
`define ZS_DESC_IN_LIST 20
`define ZS_DESC_OUT_LIST 21
`define ZS_DESC_XS2 22
`define ZS_MODE_DENSE 0
`define ZS_MODE_REDUCE 1
`define ZS_MODE_SITES 2
`define ZS_T_LAYER_SETUP 6
`define ZS_T_FILL 11
`define ZS_T_OUT_LAT 1
`define ZS_PRG_HEADER_BEATS 4
`define ZS_PRG_LAYER_BEATS 8
`define ZS_PRG_CHANNEL_BEATS 2
`define ZS_PRG_BLOCK_BEATS 3
`define ZS_PRG_BLOCK_ENTRIES 16
`define ZS_PRG_MAX_RUN 14
`define ZS_PRG_GROUP_END 15
`endif
