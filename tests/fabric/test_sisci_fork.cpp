// A process that uses libsisci and forks: the child's own SCIInitialize() must work whatever
// the parent's reader threads were doing at the fork (they take the runtime's mutex for every
// event). Regression test of a child that hung for ever in SCIInitialize (seen as a "child
// process did not finish" under ASan, where the window is widest). The hang needs the fork to
// land inside that short critical section, so this test catches it only sometimes: it forks
// 200 children while another node floods the parent with segment events.
#include "fabric_support.hpp"

#include <catch2/catch.hpp>

#include <sisci_api.h>

#include <unistd.h>

#include <atomic>
#include <chrono>

using namespace dis::test;

TEST_CASE("children forked while events arrive initialise libsisci and finish", "[fabric][fork]") {
    LocalFabric fabric({4, 8});
    SisciSession s(fabric, 4);
    sci_error_t err;
    sci_local_segment_t seg;
    SCICreateSegment(s.sd, &seg, 77, 4096, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    SCIPrepareSegment(seg, 0, 0, &err);
    SCISetSegmentAvailable(seg, 0, 0, &err);
    REQUIRE(err == SCI_ERR_OK);

    // Node 8 connects and disconnects until told to stop: each is an event to this process.
    Gate stop;
    pid_t flooder = spawn_node_process(fabric, 8, [&](sci_desc_t sd) {
        sci_error_t e;
        int rounds = 0;
        const pid_t parent = ::getppid();
        // Bounded, so that a flooder whose test died (its gate never opens) ends by itself.
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (!stop.wait(0)) {
            if (::getppid() != parent || std::chrono::steady_clock::now() > give_up) {
                return 3;
            }
            sci_remote_segment_t r;
            SCIConnectSegment(sd, &r, 4, 77, 0, nullptr, nullptr, 2000, 0, &e);
            if (e == SCI_ERR_NO_SUCH_NODEID || e == SCI_ERR_NODE_NOT_RESPONDING) {
                return 1; // the node is gone: nothing left to flood
            }
            if (e != SCI_ERR_OK) {
                continue; // a refused connection is no matter here: only the flood is
            }
            SCIDisconnectSegment(r, 0, &e);
            ++rounds;
        }
        return rounds > 0 ? 0 : 2;
    });

    for (int i = 0; i < 200; ++i) {
        pid_t child = spawn_node_process(fabric, 4, [](sci_desc_t sd) {
            sci_error_t e;
            SCIClose(sd, 0, &e);
            return e == SCI_ERR_OK ? 0 : 1;
        });
        INFO("child " << i);
        REQUIRE(wait_child(child, 20000) == 0);
    }
    stop.open();
    CHECK(wait_child(flooder, 20000) == 0);
    SCIRemoveSegment(seg, 0, &err);
    CHECK(err == SCI_ERR_OK);
}
