// libsisci seals the memory it hands to a daemon: memory registered with
// SCIRegisterSegmentMemory cannot be shrunk or grown behind the daemon's back, so a DMA that
// reads it cannot fault in the daemon.
#include "fabric_support.hpp"

#include <catch2/catch.hpp>

#include <sisci_api.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace dis::test;

namespace {

// The descriptors of this process that name a memfd called `name`.
std::vector<int> memfds_named(const std::string& name) {
    std::vector<int> out;
    DIR* d = ::opendir("/proc/self/fd");
    REQUIRE(d != nullptr);
    const int self = ::dirfd(d);
    // The link reads "/memfd:<name> (deleted)".
    const std::string want = "/memfd:" + name + " (deleted)";
    while (dirent* e = ::readdir(d)) {
        char* end = nullptr;
        long fd = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0' || fd == self) {
            continue;
        }
        char target[256] = {};
        ssize_t n = ::readlinkat(self, e->d_name, target, sizeof(target) - 1);
        if (n > 0 && std::string(target, static_cast<size_t>(n)) == want) {
            out.push_back(static_cast<int>(fd));
        }
    }
    ::closedir(d);
    return out;
}

off_t fd_size(int fd) {
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    return st.st_size;
}

} // namespace

TEST_CASE("registered segment memory is sealed: truncation is refused and DMA reading it works",
          "[fabric][segment][dma][seal]") {
    LocalFabric fabric({4});
    SisciSession s(fabric, 4);
    sci_error_t err;
    const size_t size = 4 * 4096;

    const std::vector<int> before = memfds_named("dis-seg-registered");
    sci_local_segment_t reg;
    SCICreateSegment(s.sd, &reg, 700, 0, nullptr, nullptr, SCI_FLAG_EMPTY, &err);
    REQUIRE(err == SCI_ERR_OK);
    void* mem = std::aligned_alloc(4096, size);
    REQUIRE(mem != nullptr);
    for (size_t i = 0; i < size; ++i) {
        static_cast<unsigned char*>(mem)[i] = static_cast<unsigned char>(i * 7 + 3);
    }
    SCIRegisterSegmentMemory(mem, size, reg, 0, &err);
    REQUIRE(err == SCI_ERR_OK);

    // The memfd libsisci created for it: every one of them refuses to change size.
    std::vector<int> fds = memfds_named("dis-seg-registered");
    REQUIRE(fds.size() == before.size() + 1);
    for (int fd : fds) {
        const off_t was = fd_size(fd);
        errno = 0;
        CHECK(::ftruncate(fd, 0) == -1);
        CHECK(errno == EPERM);
        errno = 0;
        CHECK(::ftruncate(fd, was * 2) == -1);
        CHECK(errno == EPERM);
        REQUIRE(fd_size(fd) == was);
        const int seals = ::fcntl(fd, F_GET_SEALS);
        CHECK((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) == (F_SEAL_SHRINK | F_SEAL_GROW));
    }

    SCIPrepareSegment(reg, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCISetSegmentAvailable(reg, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);

    // DMA reads the registered memory both ways: as the remote side of a pull (the daemon maps
    // the memfd handed back on connect) and as the local side of a push.
    sci_local_segment_t plain;
    SCICreateSegment(s.sd, &plain, 701, size, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIPrepareSegment(plain, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCISetSegmentAvailable(plain, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_map_t pmap;
    auto* pp = static_cast<volatile unsigned char*>(
        SCIMapLocalSegment(plain, &pmap, 0, size, nullptr, 0, &err));
    REQUIRE(err == SCI_ERR_OK);
    sci_remote_segment_t rreg;
    SCIConnectSegment(s.sd, &rreg, 4, 700, 0, nullptr, nullptr, 5000, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_remote_segment_t rplain;
    SCIConnectSegment(s.sd, &rplain, 4, 701, 0, nullptr, nullptr, 5000, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_dma_queue_t dq;
    SCICreateDMAQueue(s.sd, &dq, 0, 4, 0, &err);
    REQUIRE(err == SCI_ERR_OK);

    SCIStartDmaTransfer(dq, plain, rreg, 0, size, 0, nullptr, nullptr,
                        SCI_FLAG_DMA_READ | SCI_FLAG_DMA_WAIT, &err);
    REQUIRE(err == SCI_ERR_OK);
    size_t bad = 0;
    for (size_t i = 0; i < size; ++i) {
        bad += pp[i] != static_cast<unsigned char>(i * 7 + 3) ? 1 : 0;
    }
    CHECK(bad == 0);

    for (size_t i = 0; i < size; ++i) {
        pp[i] = 0;
    }
    SCIStartDmaTransfer(dq, reg, rplain, 0, size, 0, nullptr, nullptr, SCI_FLAG_DMA_WAIT, &err);
    REQUIRE(err == SCI_ERR_OK);
    bad = 0;
    for (size_t i = 0; i < size; ++i) {
        bad += pp[i] != static_cast<unsigned char>(i * 7 + 3) ? 1 : 0;
    }
    CHECK(bad == 0);

    // The daemon lived through it and still answers.
    CHECK(::kill(fabric.pid(4), 0) == 0);
    CHECK(SCIProbeNode(s.sd, 0, 4, 0, &err) == 1);
    CHECK(err == SCI_ERR_OK);

    SCIRemoveDMAQueue(dq, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIDisconnectSegment(rplain, 0, &err);
    SCIDisconnectSegment(rreg, 0, &err);
    SCIUnmapSegment(pmap, 0, &err);
    SCIRemoveSegment(plain, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIRemoveSegment(reg, 0, &err);
    CHECK(err == SCI_ERR_OK);
    std::free(mem);
}
