// libsisci's SmartIO API against real daemons: node 8 lends an epf-test function and a memory
// device, borrowers on nodes 4 and 8 list, query, borrow (shared, exclusive, busy, unknown),
// release exclusive borrows, do PIO on BARs, map local and remote segments for the device and
// run COPY through its registers, take its interrupts, and meet the teardown rules.
#include "test_sisci_smartio_support.hpp"

#include <atomic>

using namespace dis::test;
using namespace dis::test::smartio;

TEST_CASE("sisci smartio: SCIGetDeviceList with and without a filter, SCI_Q_DEVICE_INFO") {
    LendingFabric lf;
    SisciSession s(lf.fabric, k_borrower);
    sci_error_t err;
    unsigned ids[8] = {};
    size_t n = SCIGetDeviceList(s.sd, ids, 8, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    REQUIRE(n == 2);
    CHECK(ids[0] == k_epf);
    CHECK(ids[1] == k_mem);

    sci_smartio_device_info_t filter{};
    filter.pci_vendor_id = 0x104c;
    filter.pci_device_id = 0xb500;
    n = SCIGetDeviceList(s.sd, ids, 8, &filter, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(n == 1);
    CHECK(ids[0] == k_epf);
    filter = {};
    filter.nodeid = 4; // node 4 lends nothing
    CHECK(SCIGetDeviceList(s.sd, ids, 8, &filter, 0, &err) == 0);
    filter = {};
    std::snprintf(filter.user_name, sizeof filter.user_name, "mem0");
    n = SCIGetDeviceList(s.sd, ids, 8, &filter, 0, &err);
    CHECK(n == 1);
    CHECK(ids[0] == k_mem);
    SCIGetDeviceList(s.sd, nullptr, 8, nullptr, 0, &err);
    CHECK(err == SCI_ERR_ILLEGAL_PARAMETER);
    SCIGetDeviceList(s.sd, ids, 8, nullptr, 0x1, &err);
    CHECK(err == SCI_ERR_ILLEGAL_FLAG);

    sci_smartio_device_info_t info{};
    sci_smartio_query_device_t q{};
    q.subcommand = SCI_Q_DEVICE_INFO;
    q.fdid = k_mem;
    q.data = &info;
    SCIQuery(SCI_Q_DEVICE, &q, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    CHECK(info.fdid == k_mem);
    CHECK(info.nodeid == k_lender);
    CHECK(info.num_bars == 1);
    CHECK(std::string(info.user_name) == "mem0");
    CHECK(info.pci_vendor_id != 0);
    q.fdid = 0x80007; // node 8 has two devices
    SCIQuery(SCI_Q_DEVICE, &q, 0, &err);
    CHECK(err == SCI_ERR_NO_SUCH_FDID);
    q.fdid = 0x100000; // node 16 does not exist
    SCIQuery(SCI_Q_DEVICE, &q, 0, &err);
    CHECK(err == SCI_ERR_NO_SUCH_FDID);
}

TEST_CASE("sisci smartio: a busy device fails at once with SCI_ERR_NOT_AVAILABLE, an unknown "
          "fdid with SCI_ERR_NO_SUCH_FDID, shared borrows share") {
    LendingFabric lf;
    // Node 8 holds the epf-test exclusively and the memory device shared. Its process is forked
    // before this one opens SISCI: a fork while libsisci's reader threads run is safe in libsisci
    // (test_sisci_fork.cpp) but not under ThreadSanitizer, whose child may hang starting threads.
    Gate held, done;
    pid_t child = spawn_node_process(lf.fabric, k_lender, [&](sci_desc_t sd) {
        sci_error_t e;
        sci_smartio_device_t x, m;
        SCIBorrowDevice(sd, &x, k_epf, SCI_FLAG_EXCLUSIVE, &e);
        CHILD_CHECK(e == SCI_ERR_OK);
        SCIBorrowDevice(sd, &m, k_mem, 0, &e);
        CHILD_CHECK(e == SCI_ERR_OK);
        held.open();
        CHILD_CHECK(done.wait(30000));
        SCIReturnDevice(x, 0, &e);
        CHILD_CHECK(e == SCI_ERR_OK);
        SCIReturnDevice(m, 0, &e);
        CHILD_CHECK(e == SCI_ERR_OK);
        return 0;
    });
    REQUIRE(held.wait(20000));
    SisciSession s(lf.fabric, k_borrower);
    sci_error_t err;
    sci_smartio_device_t dev = nullptr;
    SCIBorrowDevice(s.sd, &dev, 0x80005, 0, &err);
    CHECK(err == SCI_ERR_NO_SUCH_FDID);
    SCIBorrowDevice(s.sd, &dev, 0x3c0000, 0, &err); // node 60 does not exist
    CHECK(err == SCI_ERR_NO_SUCH_FDID);
    SCIBorrowDevice(s.sd, &dev, k_epf, 0x2, &err);
    CHECK(err == SCI_ERR_ILLEGAL_FLAG);
    auto t0 = std::chrono::steady_clock::now();
    SCIBorrowDevice(s.sd, &dev, k_epf, 0, &err);
    CHECK(err == SCI_ERR_NOT_AVAILABLE);
    SCIBorrowDevice(s.sd, &dev, k_epf, SCI_FLAG_EXCLUSIVE, &err);
    CHECK(err == SCI_ERR_NOT_AVAILABLE);
    SCIBorrowDevice(s.sd, &dev, k_mem, SCI_FLAG_EXCLUSIVE, &err); // shared by node 8
    CHECK(err == SCI_ERR_NOT_AVAILABLE);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2)); // no waiting
    SCIBorrowDevice(s.sd, &dev, k_mem, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    CHECK(SCIGetFabricDeviceId(dev) == k_mem);
    sci_error_t close_err;
    SCIClose(s.sd, 0, &close_err);
    CHECK(close_err == SCI_ERR_BUSY); // the device handle counts in the descriptor
    SCIReturnDevice(dev, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIReturnDevice(nullptr, 0, &err);
    CHECK(err == SCI_ERR_ILLEGAL_PARAMETER);
    done.open();
    CHECK(wait_child(child) == 0);
}

TEST_CASE("sisci smartio: SCIReleaseExclusiveBorrow lets shared borrowers in") {
    LendingFabric lf;
    SisciSession s(lf.fabric, k_borrower);
    sci_error_t err;
    sci_smartio_device_t dev = nullptr;
    SCIBorrowDevice(s.sd, &dev, k_epf, SCI_FLAG_EXCLUSIVE, &err);
    REQUIRE(err == SCI_ERR_OK);
    auto try_borrow = [&](unsigned flags) {
        return run_node_process(lf.fabric, k_lender, [flags](sci_desc_t sd) {
            sci_error_t e;
            sci_smartio_device_t d;
            SCIBorrowDevice(sd, &d, k_epf, flags, &e);
            if (e == SCI_ERR_OK) {
                SCIReturnDevice(d, 0, &e);
                return 0;
            }
            return e == SCI_ERR_NOT_AVAILABLE ? 3 : 1;
        });
    };
    CHECK(try_borrow(0) == 3);
    SCIReleaseExclusiveBorrow(dev, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    CHECK(try_borrow(0) == 0);
    CHECK(try_borrow(SCI_FLAG_EXCLUSIVE) == 3); // still borrowed, shared
    SCIReleaseExclusiveBorrow(dev, 0, &err);
    CHECK(err == SCI_ERR_ILLEGAL_OPERATION);
    SCIReturnDevice(dev, 0, &err);
    CHECK(err == SCI_ERR_OK);
}

TEST_CASE("sisci smartio: PIO on the BAR of a shared memory device is seen by a borrower on "
          "another node") {
    LendingFabric lf;
    SisciSession s(lf.fabric, k_borrower);
    sci_error_t err;
    sci_smartio_device_t dev = nullptr;
    SCIBorrowDevice(s.sd, &dev, k_mem, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    {
        DevSeg bar(dev, 0);
        REQUIRE(bar.err == SCI_ERR_OK);
        CHECK(SCIGetRemoteSegmentSize(bar.seg) == 1024 * 1024);
        CHECK(SCIGetRemoteSegmentNodeId(bar.seg) == k_lender);
        CHECK(SCIGetRemoteSegmentId(bar.seg) == 0);
        *reg(bar.addr, 4096) = 0xa5a5f00d;
        Gate seen;
        pid_t child = spawn_node_process(lf.fabric, k_lender, [&](sci_desc_t sd) {
            sci_error_t e;
            sci_smartio_device_t d;
            SCIBorrowDevice(sd, &d, k_mem, 0, &e);
            CHILD_CHECK(e == SCI_ERR_OK);
            {
                DevSeg b(d, 0);
                CHILD_CHECK(b.err == SCI_ERR_OK);
                CHILD_CHECK(*reg(b.addr, 4096) == 0xa5a5f00d);
                *reg(b.addr, 8192) = 0x12345678; // and back
            }
            SCIReturnDevice(d, 0, &e);
            CHILD_CHECK(e == SCI_ERR_OK);
            seen.open();
            return 0;
        });
        CHECK(seen.wait(20000));
        CHECK(wait_child(child) == 0);
        CHECK(*reg(bar.addr, 8192) == 0x12345678);
    }
    SCIReturnDevice(dev, 0, &err);
    CHECK(err == SCI_ERR_OK);
}

TEST_CASE("sisci smartio: a local and a remote segment mapped for the device, COPY through the "
          "registers, the interrupt, and an address nobody mapped") {
    LendingFabric lf;
    // A segment of node 8 that the device will write into.
    Gate created, finished;
    pid_t owner = spawn_node_process(lf.fabric, k_lender, [&](sci_desc_t sd) {
        sci_error_t e;
        sci_local_segment_t seg;
        SCICreateSegment(sd, &seg, 0x99, 8192, nullptr, nullptr, 0, &e);
        CHILD_CHECK(e == SCI_ERR_OK);
        SCIPrepareSegment(seg, 0, 0, &e);
        SCISetSegmentAvailable(seg, 0, 0, &e);
        CHILD_CHECK(e == SCI_ERR_OK);
        created.open();
        CHILD_CHECK(finished.wait(30000));
        return 0;
    });
    REQUIRE(created.wait(20000));
    SisciSession s(lf.fabric, k_borrower);
    sci_error_t err;
    sci_smartio_device_t dev = nullptr;
    SCIBorrowDevice(s.sd, &dev, k_epf, SCI_FLAG_EXCLUSIVE, &err);
    REQUIRE(err == SCI_ERR_OK);
    {
        LocalSeg local(s.sd, 0x42, 8192);
        for (unsigned i = 0; i < 4096; ++i) {
            local.mem[i] = static_cast<unsigned char>(i ^ 0x5a);
        }
        sci_remote_segment_t remote;
        SCIConnectSegment(s.sd, &remote, k_lender, 0x99, 0, nullptr, nullptr, 5000, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        sci_map_t rmap;
        auto* rmem = static_cast<volatile unsigned char*>(
            SCIMapRemoteSegment(remote, &rmap, 0, 8192, nullptr, 0, &err));
        REQUIRE(err == SCI_ERR_OK);

        DevSeg bar(dev, 0);
        REQUIRE(bar.err == SCI_ERR_OK);
        sci_ioaddr_t io_local = 0, io_remote = 0, io_part = 0;
        SCIMapLocalSegmentForDevice(local.seg, 0, dev, &io_local, 0, 4096, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        SCIMapRemoteSegmentForDevice(remote, dev, &io_remote, 0, 0, 0, &err);
        REQUIRE(err == SCI_ERR_OK);
        CHECK(io_local != io_remote);
        // Argument checks.
        SCIMapRemoteSegmentForDevice(remote, dev, &io_part, 4096, 0, 0, &err);
        CHECK(err == SCI_ERR_BUSY); // mapped already, differently
        SCIMapLocalSegmentForDevice(local.seg, 1, dev, &io_part, 0, 0, 0, &err);
        CHECK(err == SCI_ERR_NO_SUCH_ADAPTERNO);
        SCIMapLocalSegmentForDevice(local.seg, 0, nullptr, &io_part, 0, 0, 0, &err);
        CHECK(err == SCI_ERR_ILLEGAL_PARAMETER);

        std::uint32_t st = copy(bar.addr, io_local, io_remote + 4096, 4096, 5);
        CHECK((st & k_st_copy_success) != 0);
        bool same = true;
        for (unsigned i = 0; i < 4096; ++i) {
            same = same && rmem[4096 + i] == static_cast<unsigned char>(i ^ 0x5a);
        }
        CHECK(same);
        unsigned type = 9, number = 9;
        SCIDisWaitForDeviceInterrupt(dev, &type, &number, 10000, 0, &err);
        CHECK(err == SCI_ERR_OK);
        CHECK(type == SCI_DIS_DEVICE_IRQ_MSI);
        CHECK(number == 5);

        // The second page of the local segment was not mapped for the device.
        st = copy(bar.addr, io_local + 4096, io_remote, 64);
        CHECK((st & k_st_copy_fail) != 0);
        CHECK((st & k_st_src_invalid) != 0);
        CHECK(rmem[0] == 0);
        SCIDisWaitForDeviceInterrupt(dev, &type, &number, 10000, 0, &err);
        CHECK(err == SCI_ERR_OK);
        SCIDisWaitForDeviceInterrupt(dev, &type, &number, 50, 0, &err);
        CHECK(err == SCI_ERR_TIMEOUT);

        SCIUnmapRemoteSegmentForDevice(remote, dev, 0, &err);
        CHECK(err == SCI_ERR_OK);
        SCIUnmapLocalSegmentForDevice(local.seg, 0, dev, 0, &err);
        CHECK(err == SCI_ERR_OK);
        // Unmapped: the device's DMA does not reach it any more.
        st = copy(bar.addr, io_local, io_remote, 64);
        CHECK((st & k_st_copy_fail) != 0);
        SCIUnmapSegment(rmap, 0, &err);
        SCIDisconnectSegment(remote, 0, &err);
        CHECK(err == SCI_ERR_OK);
    }
    SCIReturnDevice(dev, 0, &err);
    CHECK(err == SCI_ERR_OK);
    finished.open();
    CHECK(wait_child(owner) == 0);
}

TEST_CASE("sisci smartio: teardown rules: SCIReturnDevice, SCIRemoveSegment and "
          "SCIDisconnectSegment wait for what depends on them (SCI_ERR_BUSY)") {
    LendingFabric lf;
    SisciSession s(lf.fabric, k_borrower);
    sci_error_t err;
    sci_smartio_device_t dev = nullptr;
    SCIBorrowDevice(s.sd, &dev, k_epf, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    auto local = std::make_unique<LocalSeg>(s.sd, 0x43, 4096);
    auto bar = std::make_unique<DevSeg>(dev, 2);
    REQUIRE(bar->err == SCI_ERR_OK);
    CHECK(SCIGetRemoteSegmentSize(bar->seg) == 1024);

    SCIReturnDevice(dev, 0, &err);
    CHECK(err == SCI_ERR_BUSY); // BAR 2 connected
    sci_ioaddr_t io = 0;
    SCIMapLocalSegmentForDevice(local->seg, 0, dev, &io, 0, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    bar.reset(); // unmapped and disconnected
    SCIRemoveSegment(local->seg, 0, &err);
    CHECK(err == SCI_ERR_BUSY);
    sci_remote_segment_t bar2;
    SCIConnectDeviceSegment(dev, &bar2, 2, SCI_MEMTYPE_BAR, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIMapRemoteSegmentForDevice(bar2, dev, &io, 0, 0, 0, &err); // peer-to-peer: its own BAR
    REQUIRE(err == SCI_ERR_OK);
    SCIDisconnectSegment(bar2, 0, &err);
    CHECK(err == SCI_ERR_BUSY); // mapped for the device
    SCIReturnDevice(dev, 0, &err);
    CHECK(err == SCI_ERR_BUSY);
    SCIUnmapRemoteSegmentForDevice(bar2, dev, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIDisconnectSegment(bar2, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIReturnDevice(dev, 0, &err);
    CHECK(err == SCI_ERR_BUSY); // the local segment is still mapped for it
    SCIUnmapLocalSegmentForDevice(local->seg, 0, dev, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIUnmapLocalSegmentForDevice(local->seg, 0, dev, 0, &err);
    CHECK(err == SCI_ERR_NOT_CONNECTED);
    local.reset(); // SCIRemoveSegment succeeds now
    SCIReturnDevice(dev, 0, &err);
    CHECK(err == SCI_ERR_OK);

    // PCIe requesters: registered until unregistered; SCIClose waits for them.
    SCIRegisterPCIeRequester(s.sd, 0, 3, 0, SCI_FLAG_PCIE_REQUESTER_GLOBAL, &err);
    CHECK(err == SCI_ERR_OK);
    SCIRegisterPCIeRequester(s.sd, 0, 256, 0, 0, &err);
    CHECK(err == SCI_ERR_ILLEGAL_PARAMETER);
    SCIClose(s.sd, 0, &err);
    CHECK(err == SCI_ERR_BUSY);
    SCIUnregisterPCIeRequester(s.sd, 0, 3, 0, 0, &err);
    CHECK(err == SCI_ERR_OK);
}

TEST_CASE("sisci smartio: device memory: a private segment per borrower, a shared one for all, "
          "SCI_ERR_SEGMENTID_USED") {
    LendingFabric lf;
    SisciSession s(lf.fabric, k_borrower);
    sci_error_t err;
    sci_smartio_device_t dev = nullptr;
    SCIBorrowDevice(s.sd, &dev, k_epf, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCICreateDeviceSegment(dev, 3, 8192, SCI_MEMTYPE_PRIVATE, SCI_MEMACCESS_DEVICE_WRITE,
                           SCI_FLAG_DEVICE_SIDE_ONLY, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCICreateDeviceSegment(dev, 4, 4096, SCI_MEMTYPE_SHARED, SCI_MEMACCESS_MULTIHOST_READ, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCICreateDeviceSegment(dev, 4, 4096, SCI_MEMTYPE_SHARED, 0, 0, &err);
    CHECK(err == SCI_ERR_SEGMENTID_USED);
    SCICreateDeviceSegment(dev, 5, 0, SCI_MEMTYPE_PRIVATE, 0, 0, &err);
    CHECK(err == SCI_ERR_ILLEGAL_PARAMETER);
    {
        DevSeg priv(dev, 3, SCI_MEMTYPE_PRIVATE);
        REQUIRE(priv.err == SCI_ERR_OK);
        CHECK(SCIGetRemoteSegmentSize(priv.seg) == 8192);
        DevSeg shared(dev, 4, SCI_MEMTYPE_SHARED);
        REQUIRE(shared.err == SCI_ERR_OK);
        *reg(shared.addr, 0) = 0xc0ffee;
        *reg(priv.addr, 0) = 0xbadf00d;
        // Another borrower sees the shared one, not the private one.
        CHECK(run_node_process(lf.fabric, k_lender, [](sci_desc_t sd) {
                  sci_error_t e;
                  sci_smartio_device_t d;
                  SCIBorrowDevice(sd, &d, k_epf, 0, &e);
                  CHILD_CHECK(e == SCI_ERR_OK);
                  {
                      DevSeg sh(d, 4, SCI_MEMTYPE_SHARED);
                      CHILD_CHECK(sh.err == SCI_ERR_OK);
                      CHILD_CHECK(*reg(sh.addr, 0) == 0xc0ffee);
                      DevSeg pr(d, 3, SCI_MEMTYPE_PRIVATE);
                      CHILD_CHECK(pr.err != SCI_ERR_OK);
                  }
                  SCIReturnDevice(d, 0, &e);
                  return e == SCI_ERR_OK ? 0 : 1;
              }) == 0);
    }
    SCIReturnDevice(dev, 0, &err);
    CHECK(err == SCI_ERR_OK);
}
