// zs_native.cpp: zeroskip_top, Verilated without --timing and without VPI, as a shared
// library for ctypes (zeroskip.driver.sim.native).
//
// The clock is toggled here, and the AXI-Lite master and the two AXI DMA channels are
// C++ state machines on the engine's ports, so no Python runs while the engine computes:
//
//   settle():  drive the ports from the masters' state, clock low, evaluate (the
//              combinational outputs, ready/valid included, are now those the rising
//              edge sees);
//   rise():    sample the handshakes, clock high, evaluate, advance the masters.
//
// MM2S sends beats 0..n-1 of the caller's array at one beat per cycle whenever the
// engine is ready, TLAST on the last. S2MM stores beats while it has room; like the
// Xilinx AXI DMA it completes only on TLAST (a full buffer without TLAST holds tready low
// and never completes). zs_command() runs one whole command (register writes, both
// transfers, run to completion or to a cycle deadline, register reads) in one call.
//
// The register map lives in driver/contract.json: this file knows no offsets, the caller
// passes the writes to make before and the registers to read after a command.

#include <chrono>
#include <cstdint>
#include <memory>

#include "Vzeroskip_top.h"
#include "verilated.h"

#define ZS_API extern "C" __attribute__((visibility("default")))

namespace {

// zs_command() / zs_run() outcomes (zeroskip.driver.sim.native mirrors them)
enum : int {
    ZS_DONE = 0,          // the awaited channels completed (S2MM: TLAST received)
    ZS_DEADLINE = 1,      // the cycle deadline came first
    ZS_AXIL_TIMEOUT = 2,  // an AXI-Lite transaction did not complete
    ZS_BAD_ARGS = 3,      // a null buffer with a non-zero length
};

// zs_run() conditions
enum : int { UNTIL_MM2S = 1, UNTIL_S2MM = 2 };

constexpr uint64_t AXIL_MAX_CYCLES = 1000;

class Sim {
public:
    Sim() : ctx_(new VerilatedContext), top_(new Vzeroskip_top{ctx_.get(), "zs"}) {
        Vzeroskip_top& t = *top_;
        t.aclk = 0;
        t.aresetn = 0;
        t.s_axi_ctrl_awaddr = 0;
        t.s_axi_ctrl_awprot = 0;
        t.s_axi_ctrl_awvalid = 0;
        t.s_axi_ctrl_wdata = 0;
        t.s_axi_ctrl_wstrb = 0;
        t.s_axi_ctrl_wvalid = 0;
        t.s_axi_ctrl_bready = 0;
        t.s_axi_ctrl_araddr = 0;
        t.s_axi_ctrl_arprot = 0;
        t.s_axi_ctrl_arvalid = 0;
        t.s_axi_ctrl_rready = 0;
        t.s_axis_tdata = 0;
        t.s_axis_tkeep = 0xFF;
        t.s_axis_tvalid = 0;
        t.s_axis_tlast = 0;
        t.m_axis_tready = 0;
        t.eval();
    }

    ~Sim() { top_->final(); }

    uint64_t cycle = 0;      // rising edges since creation

    // -- MM2S: caller's beats into the engine's s_axis --------------------------------
    const uint64_t* in = nullptr;
    uint64_t in_n = 0, in_sent = 0;
    bool in_busy = false;

    // -- S2MM: the engine's m_axis into the caller's buffer ---------------------------
    uint64_t* out = nullptr;
    uint64_t out_cap = 0, out_n = 0;
    bool out_busy = false, out_last = false;

    void reset(int cycles) {
        top_->aresetn = 0;
        for (int i = 0; i < cycles; ++i) step();
        top_->aresetn = 1;
        dma_reset();
    }

    void dma_reset() {
        in = nullptr;
        in_n = in_sent = 0;
        in_busy = false;
        out = nullptr;
        out_cap = out_n = 0;
        out_busy = out_last = false;
    }

    void mm2s(const uint64_t* beats, uint64_t n) {
        in = beats;
        in_n = n;
        in_sent = 0;
        in_busy = n != 0;
    }

    void s2mm(uint64_t* buf, uint64_t cap) {
        out = buf;
        out_cap = cap;
        out_n = 0;
        out_busy = true;
        out_last = false;
    }

    bool done(int until) const {
        return (!(until & UNTIL_MM2S) || !in_busy) && (!(until & UNTIL_S2MM) || out_last);
    }

    // Run until the channels in `until` are done or `max_cycles` pass; ZS_DONE or ZS_DEADLINE.
    int run(int until, uint64_t max_cycles) {
        for (uint64_t i = 0; i < max_cycles; ++i) {
            if (done(until)) return ZS_DONE;
            step();
        }
        return done(until) ? ZS_DONE : ZS_DEADLINE;
    }

    // One AXI-Lite write (AW and W together, then B); returns BRESP or -1 on timeout.
    int axil_write(uint32_t addr, uint32_t data) {
        Vzeroskip_top& t = *top_;
        t.s_axi_ctrl_awaddr = addr;
        t.s_axi_ctrl_awvalid = 1;
        t.s_axi_ctrl_wdata = data;
        t.s_axi_ctrl_wstrb = 0xF;
        t.s_axi_ctrl_wvalid = 1;
        t.s_axi_ctrl_bready = 1;
        bool aw = true, w = true;
        for (uint64_t i = 0; i < AXIL_MAX_CYCLES; ++i) {
            settle();
            const bool aw_hs = aw && t.s_axi_ctrl_awready;
            const bool w_hs = w && t.s_axi_ctrl_wready;
            const bool b_hs = !aw && !w && t.s_axi_ctrl_bvalid;
            const int resp = t.s_axi_ctrl_bresp;
            rise();
            if (aw_hs) {
                aw = false;
                t.s_axi_ctrl_awvalid = 0;
            }
            if (w_hs) {
                w = false;
                t.s_axi_ctrl_wvalid = 0;
            }
            if (b_hs) {
                t.s_axi_ctrl_bready = 0;
                return resp;
            }
        }
        t.s_axi_ctrl_awvalid = t.s_axi_ctrl_wvalid = t.s_axi_ctrl_bready = 0;
        return -1;
    }

    // One AXI-Lite read; returns RRESP (data in *value) or -1 on timeout.
    int axil_read(uint32_t addr, uint32_t* value) {
        Vzeroskip_top& t = *top_;
        t.s_axi_ctrl_araddr = addr;
        t.s_axi_ctrl_arvalid = 1;
        t.s_axi_ctrl_rready = 1;
        bool ar = true;
        for (uint64_t i = 0; i < AXIL_MAX_CYCLES; ++i) {
            settle();
            const bool ar_hs = ar && t.s_axi_ctrl_arready;
            const bool r_hs = !ar && t.s_axi_ctrl_rvalid;
            const uint32_t data = t.s_axi_ctrl_rdata;
            const int resp = t.s_axi_ctrl_rresp;
            rise();
            if (ar_hs) {
                ar = false;
                t.s_axi_ctrl_arvalid = 0;
            }
            if (r_hs) {
                t.s_axi_ctrl_rready = 0;
                *value = data;
                return resp;
            }
        }
        t.s_axi_ctrl_arvalid = t.s_axi_ctrl_rready = 0;
        return -1;
    }

private:
    std::unique_ptr<VerilatedContext> ctx_;
    std::unique_ptr<Vzeroskip_top> top_;
    bool in_hs_ = false, out_hs_ = false;

    void settle() {
        Vzeroskip_top& t = *top_;
        t.s_axis_tvalid = in_busy;
        if (in_busy) {
            t.s_axis_tdata = in[in_sent];
            t.s_axis_tlast = in_sent + 1 == in_n;
        }
        t.m_axis_tready = out_busy && out_n < out_cap;
        t.aclk = 0;
        t.eval();
    }

    void rise() {
        Vzeroskip_top& t = *top_;
        const bool in_hs = in_busy && t.s_axis_tready;
        const bool out_hs = t.m_axis_tready && t.m_axis_tvalid;
        const uint64_t odata = t.m_axis_tdata;
        const bool olast = t.m_axis_tlast;
        t.aclk = 1;
        t.eval();
        ++cycle;
        if (in_hs && ++in_sent == in_n) in_busy = false;
        if (out_hs) {
            out[out_n++] = odata;
            if (olast) {
                out_busy = false;
                out_last = true;
            }
        }
    }

    void step() {
        settle();
        rise();
    }
};

inline Sim* sim(void* h) { return static_cast<Sim*>(h); }

uint64_t now_ns() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

}  // namespace

// ---------------------------------------------------------------------------- C API

ZS_API void* zs_create(void) { return new Sim(); }

ZS_API void zs_destroy(void* h) { delete sim(h); }

// Hold aresetn low for `cycles` cycles, then release it; the DMA channels are idle after.
ZS_API void zs_reset(void* h, int cycles) { sim(h)->reset(cycles); }

ZS_API uint64_t zs_cycle(void* h) { return sim(h)->cycle; }

ZS_API int zs_axil_write(void* h, uint32_t addr, uint32_t value) { return sim(h)->axil_write(addr, value); }

ZS_API int zs_axil_read(void* h, uint32_t addr, uint32_t* value) { return sim(h)->axil_read(addr, value); }

// Start MM2S over `n` beats of `beats` (the caller keeps the array alive until it is done).
ZS_API void zs_mm2s(void* h, const uint64_t* beats, uint64_t n) { sim(h)->mm2s(beats, n); }

// Arm S2MM into `buf` of `cap` beats (kept alive by the caller until done or reset).
ZS_API void zs_s2mm(void* h, uint64_t* buf, uint64_t cap) { sim(h)->s2mm(buf, cap); }

// Both channels idle, nothing in flight (the effect of the AXI DMA's soft reset).
ZS_API void zs_dma_reset(void* h) { sim(h)->dma_reset(); }

// Channel state: [0] MM2S beats sent, [1] MM2S busy, [2] S2MM beats received,
// [3] S2MM busy, [4] S2MM completed on TLAST.
ZS_API void zs_dma_state(void* h, uint64_t* st) {
    const Sim& s = *sim(h);
    st[0] = s.in_sent;
    st[1] = s.in_busy;
    st[2] = s.out_n;
    st[3] = s.out_busy;
    st[4] = s.out_last;
}

// Run until the channels in `until` (1 MM2S, 2 S2MM, 3 both) are done, at most
// `max_cycles` cycles; ZS_DONE or ZS_DEADLINE.
ZS_API int zs_run(void* h, int until, uint64_t max_cycles) { return sim(h)->run(until, max_cycles); }

// One whole command in one call:
//   1. AXI-Lite writes (writes[2i] = offset, writes[2i+1] = value), in order;
//   2. S2MM armed into out[0..out_cap), MM2S started over in[0..in_beats);
//   3. run until both channels are done (S2MM on TLAST) or max_cycles cycles pass;
//   4. AXI-Lite reads of reads[0..n_reads) into values[].
// info: [0] beats received, [1] 1 if the last one carried TLAST, [2] beats sent,
// [3] cycles simulated by the call, [4] nanoseconds spent in it.
// Returns ZS_DONE, ZS_DEADLINE (the reads are still made), ZS_AXIL_TIMEOUT or ZS_BAD_ARGS.
// The channels are left idle (DMA reset) when the call returns.
ZS_API int zs_command(void* h, const uint32_t* writes, int n_writes, const uint64_t* in, uint64_t in_beats,
                      uint64_t* out, uint64_t out_cap, uint64_t max_cycles, const uint32_t* reads, uint32_t* values,
                      int n_reads, uint64_t* info) {
    Sim& s = *sim(h);
    if ((in_beats && !in) || (out_cap && !out) || (n_writes && !writes) || (n_reads && (!reads || !values)))
        return ZS_BAD_ARGS;
    const uint64_t t0 = now_ns();
    const uint64_t c0 = s.cycle;
    int rc = ZS_DONE;
    for (int i = 0; i < n_writes && rc == ZS_DONE; ++i)
        if (s.axil_write(writes[2 * i], writes[2 * i + 1]) < 0) rc = ZS_AXIL_TIMEOUT;
    if (rc == ZS_DONE) {
        s.s2mm(out, out_cap);
        s.mm2s(in, in_beats);
        rc = s.run(UNTIL_MM2S | UNTIL_S2MM, max_cycles);
    }
    info[0] = s.out_n;
    info[1] = s.out_last;
    info[2] = s.in_sent;
    s.dma_reset();
    for (int i = 0; i < n_reads; ++i) {
        if (s.axil_read(reads[i], &values[i]) < 0) {
            rc = ZS_AXIL_TIMEOUT;
            break;
        }
    }
    info[3] = s.cycle - c0;
    info[4] = now_ns() - t0;
    return rc;
}
