// The borrower side of the VM's SmartIO-over-VFIO checks (tests/vm/guest/smartio.sh): a SISCI
// program on the software fabric driving real (QEMU-emulated) PCIe devices that a disd in the
// guest hosts through vfio-pci. Each mode prints key=value lines the script checks, and exits
// 0 only when what it checked held.
//
//   dis-vm-smartio peek BDF            NVMe CAP and VS through sysfs resource0 (before VFIO)
//   dis-vm-smartio nvme-regs FDID      the same registers through the BAR0 device segment
//   dis-vm-smartio edu-dma FDID        edu's DMA engine: segment -> device memory -> segment,
//                                      each with its completion interrupt (MSI)
//   dis-vm-smartio edu-fault FDID      a DMA to an IO address past the mapping: the IOMMU
//                                      blocks it, the segment stays intact
//   dis-vm-smartio edu-kill FDID       starts a DMA and dies (SIGKILL) before it completes
#include "sisci_api.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

// edu (QEMU docs/specs/edu.txt): BAR0 registers.
constexpr std::uint32_t k_edu_id = 0x00;   // 0x010000ed
constexpr std::uint32_t k_edu_live = 0x04; // reads back the inverse of what was written
constexpr std::uint32_t k_edu_irq_status = 0x24;
constexpr std::uint32_t k_edu_irq_ack = 0x64;
constexpr std::uint32_t k_edu_dma_src = 0x80;
constexpr std::uint32_t k_edu_dma_dst = 0x88;
constexpr std::uint32_t k_edu_dma_cnt = 0x90;
constexpr std::uint32_t k_edu_dma_cmd = 0x98;
constexpr std::uint32_t k_edu_cmd_run = 0x1, k_edu_cmd_to_ram = 0x2, k_edu_cmd_irq = 0x4;
constexpr std::uint32_t k_edu_buffer = 0x40000; // device memory, 4096 bytes
constexpr std::uint32_t k_edu_dma_irq = 0x100;
// Less than the 4096-byte buffer: QEMU 7.2's edu_check_range() takes a transfer of the whole
// buffer for out of bounds (an off-by-one) and stops the machine with hw_error().
constexpr std::size_t k_bytes = 2048;

[[noreturn]] void die(const char* what, sci_error_t err) {
    std::printf("error=%s:0x%x\n", what, static_cast<unsigned>(err));
    std::fflush(stdout);
    std::exit(2);
}

struct Borrowed {
    sci_desc_t sd = nullptr;
    sci_smartio_device_t dev = nullptr;
    sci_remote_segment_t bar = nullptr;
    sci_map_t bar_map = nullptr;
    volatile std::uint32_t* regs = nullptr;
    std::size_t bar_size = 0;

    explicit Borrowed(unsigned fdid) {
        sci_error_t err;
        SCIInitialize(0, &err);
        if (err != SCI_ERR_OK)
            die("SCIInitialize", err);
        SCIOpen(&sd, 0, &err);
        if (err != SCI_ERR_OK)
            die("SCIOpen", err);
        SCIBorrowDevice(sd, &dev, fdid, SCI_FLAG_EXCLUSIVE, &err);
        if (err != SCI_ERR_OK)
            die("SCIBorrowDevice", err);
        SCIConnectDeviceSegment(dev, &bar, 0, SCI_MEMTYPE_BAR, nullptr, nullptr, 0, &err);
        if (err != SCI_ERR_OK)
            die("SCIConnectDeviceSegment(BAR0)", err);
        bar_size = SCIGetRemoteSegmentSize(bar);
        std::printf("bar0_size=%zu\n", bar_size);
        regs = static_cast<volatile std::uint32_t*>(SCIMapRemoteSegment(
            bar, &bar_map, 0, bar_size, nullptr, SCI_FLAG_IO_MAP_IOSPACE, &err));
        if (err != SCI_ERR_OK)
            die("SCIMapRemoteSegment(BAR0)", err);
    }
    std::uint32_t rd(std::uint32_t off) const { return regs[off / 4]; }
    void wr(std::uint32_t off, std::uint32_t v) const { regs[off / 4] = v; }
    void done() {
        sci_error_t err;
        SCIUnmapSegment(bar_map, 0, &err);
        SCIDisconnectSegment(bar, 0, &err);
        SCIReturnDevice(dev, 0, &err);
        if (err != SCI_ERR_OK)
            die("SCIReturnDevice", err);
        SCIClose(sd, 0, &err);
        SCITerminate();
    }
};

// A local segment of `size` bytes mapped here and for the device.
struct DmaBuffer {
    sci_local_segment_t seg = nullptr;
    sci_map_t map = nullptr;
    volatile unsigned char* mem = nullptr;
    sci_ioaddr_t io = 0;
    std::size_t size = 0;

    DmaBuffer(Borrowed& b, std::size_t bytes) : size(bytes) {
        sci_error_t err;
        SCICreateSegment(b.sd, &seg, 0, size, nullptr, nullptr, SCI_FLAG_AUTO_ID, &err);
        if (err != SCI_ERR_OK)
            die("SCICreateSegment", err);
        SCIPrepareSegment(seg, 0, 0, &err);
        if (err != SCI_ERR_OK)
            die("SCIPrepareSegment", err);
        mem = static_cast<volatile unsigned char*>(
            SCIMapLocalSegment(seg, &map, 0, size, nullptr, 0, &err));
        if (err != SCI_ERR_OK)
            die("SCIMapLocalSegment", err);
        SCIMapLocalSegmentForDevice(seg, 0, b.dev, &io, 0, size, 0, &err);
        if (err != SCI_ERR_OK)
            die("SCIMapLocalSegmentForDevice", err);
        std::printf("io_addr=0x%llx size=%zu\n", static_cast<unsigned long long>(io), size);
    }
    void done(Borrowed& b) {
        sci_error_t err;
        SCIUnmapLocalSegmentForDevice(seg, 0, b.dev, 0, &err);
        if (err != SCI_ERR_OK)
            die("SCIUnmapLocalSegmentForDevice", err);
        SCIUnmapSegment(map, 0, &err);
        SCIRemoveSegment(seg, 0, &err);
    }
};

unsigned parse_fdid(const char* text) {
    return static_cast<unsigned>(std::strtoul(text, nullptr, 0));
}

int peek(const char* bdf) {
    std::string path = std::string("/sys/bus/pci/devices/") + bdf + "/resource0";
    int fd = ::open(path.c_str(), O_RDWR | O_SYNC);
    if (fd < 0) {
        std::printf("error=open %s: %s\n", path.c_str(), std::strerror(errno));
        return 2;
    }
    void* p = ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) {
        std::printf("error=mmap %s: %s\n", path.c_str(), std::strerror(errno));
        return 2;
    }
    auto* r = static_cast<volatile std::uint32_t*>(p);
    std::uint64_t cap = (std::uint64_t{r[1]} << 32) | r[0];
    std::printf("cap=0x%016llx\nvs=0x%08x\n", static_cast<unsigned long long>(cap), r[2]);
    ::munmap(p, 4096);
    return 0;
}

int nvme_regs(unsigned fdid) {
    Borrowed b(fdid);
    std::uint64_t cap = (std::uint64_t{b.rd(4)} << 32) | b.rd(0);
    std::printf("cap=0x%016llx\nvs=0x%08x\n", static_cast<unsigned long long>(cap), b.rd(8));
    b.done();
    return 0;
}

// One edu DMA and its interrupt: true when the MSI came and the engine finished.
bool edu_transfer(Borrowed& b, std::uint64_t src, std::uint64_t dst, std::uint32_t dir) {
    b.wr(k_edu_dma_src, static_cast<std::uint32_t>(src));
    b.wr(k_edu_dma_src + 4, static_cast<std::uint32_t>(src >> 32));
    b.wr(k_edu_dma_dst, static_cast<std::uint32_t>(dst));
    b.wr(k_edu_dma_dst + 4, static_cast<std::uint32_t>(dst >> 32));
    b.wr(k_edu_dma_cnt, static_cast<std::uint32_t>(k_bytes));
    b.wr(k_edu_dma_cmd, k_edu_cmd_run | dir | k_edu_cmd_irq);
    unsigned type = 0, number = 0;
    sci_error_t err;
    SCIDisWaitForDeviceInterrupt(b.dev, &type, &number, 5000, 0, &err);
    std::uint32_t status = b.rd(k_edu_irq_status);
    b.wr(k_edu_irq_ack, status);
    std::printf("irq=%s type=%u number=%u irq_status=0x%x cmd=0x%x\n",
                err == SCI_ERR_OK ? "yes" : "timeout", type, number, status, b.rd(k_edu_dma_cmd));
    return err == SCI_ERR_OK && type == SCI_DIS_DEVICE_IRQ_MSI && (status & k_edu_dma_irq) != 0 &&
           (b.rd(k_edu_dma_cmd) & k_edu_cmd_run) == 0;
}

int edu_dma(unsigned fdid) {
    Borrowed b(fdid);
    bool ok = true;
    std::printf("edu_id=0x%08x\n", b.rd(k_edu_id));
    b.wr(k_edu_live, 0x12345678);
    std::uint32_t live = b.rd(k_edu_live);
    std::printf("liveness=0x%08x\n", live);
    ok &= b.rd(k_edu_id) == 0x010000ed && live == ~0x12345678u;
    DmaBuffer buf(b, 2 * k_bytes);
    for (std::size_t i = 0; i < k_bytes; ++i) {
        buf.mem[i] = static_cast<unsigned char>((i * 7 + 3) & 0xff);
        buf.mem[k_bytes + i] = 0;
    }
    bool in = edu_transfer(b, buf.io, k_edu_buffer, 0);
    std::printf("to_device_irq=%s\n", in ? "ok" : "bad");
    bool out = edu_transfer(b, k_edu_buffer, buf.io + k_bytes, k_edu_cmd_to_ram);
    std::printf("to_ram_irq=%s\n", out ? "ok" : "bad");
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < k_bytes; ++i) {
        wrong += buf.mem[k_bytes + i] != buf.mem[i];
    }
    std::printf("bytes_compared=%zu bytes_wrong=%zu\n", k_bytes, wrong);
    ok &= in && out && wrong == 0;
    buf.done(b);
    b.done();
    std::printf("result=%s\n", ok ? "ok" : "bad");
    return ok ? 0 : 1;
}

int edu_fault(unsigned fdid) {
    Borrowed b(fdid);
    DmaBuffer buf(b, k_bytes);
    for (std::size_t i = 0; i < k_bytes; ++i) {
        buf.mem[i] = 0x5a;
    }
    // Fill the device's memory with something else, so that a write that got through shows.
    DmaBuffer fill(b, k_bytes);
    for (std::size_t i = 0; i < k_bytes; ++i) {
        fill.mem[i] = 0xc3;
    }
    bool in = edu_transfer(b, fill.io, k_edu_buffer, 0);
    // The guard page right after buf's mapping: not mapped for the device.
    std::uint64_t outside = (buf.io + buf.size + 4095) / 4096 * 4096;
    std::printf("fault_iova=0x%llx\n", static_cast<unsigned long long>(outside));
    bool out = edu_transfer(b, k_edu_buffer, outside, k_edu_cmd_to_ram);
    std::size_t changed = 0;
    for (std::size_t i = 0; i < k_bytes; ++i) {
        changed += buf.mem[i] != 0x5a;
    }
    std::printf("fill_irq=%s outside_irq=%s segment_bytes_changed=%zu\n", in ? "ok" : "bad",
                out ? "ok" : "bad", changed);
    fill.done(b);
    buf.done(b);
    b.done();
    bool ok = in && changed == 0;
    std::printf("result=%s\n", ok ? "ok" : "bad");
    return ok ? 0 : 1;
}

int edu_kill(unsigned fdid) {
    Borrowed b(fdid);
    DmaBuffer buf(b, k_bytes);
    for (std::size_t i = 0; i < k_bytes; ++i) {
        buf.mem[i] = 0x11;
    }
    // edu runs a DMA 100 ms (virtual time) after the command: die before that.
    b.wr(k_edu_dma_src, k_edu_buffer);
    b.wr(k_edu_dma_src + 4, 0);
    b.wr(k_edu_dma_dst, static_cast<std::uint32_t>(buf.io));
    b.wr(k_edu_dma_dst + 4, static_cast<std::uint32_t>(buf.io >> 32));
    b.wr(k_edu_dma_cnt, static_cast<std::uint32_t>(k_bytes));
    b.wr(k_edu_dma_cmd, k_edu_cmd_run | k_edu_cmd_to_ram | k_edu_cmd_irq);
    std::printf("dma_started cmd=0x%x\n", b.rd(k_edu_dma_cmd));
    std::fflush(stdout);
    ::raise(SIGKILL);
    return 3;
}

} // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s peek BDF | nvme-regs|edu-dma|edu-fault|edu-kill FDID\n",
                     argv[0]);
        return 2;
    }
    std::string mode = argv[1];
    if (mode == "peek")
        return peek(argv[2]);
    unsigned fdid = parse_fdid(argv[2]);
    if (mode == "nvme-regs")
        return nvme_regs(fdid);
    if (mode == "edu-dma")
        return edu_dma(fdid);
    if (mode == "edu-fault")
        return edu_fault(fdid);
    if (mode == "edu-kill")
        return edu_kill(fdid);
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
}
