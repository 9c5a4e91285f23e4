// disd counts interrupt triggers it never sees (they are eventfd writes): the triggering
// processes count them on the interrupt's shared counters page.
#include "fabric_support.hpp"

#include "dis/fabric_admin.hpp"

#include <catch2/catch.hpp>

#include <sisci_api.h>

using namespace dis::test;

namespace {

std::uint64_t triggered(const LocalFabric& fabric, std::uint32_t node) {
    dis::fabric::AdminClient admin(fabric.dir(), node);
    return admin.node_info().counters.at("interrupts_triggered_total");
}

} // namespace

TEST_CASE("interrupts_triggered_total counts plain and data triggers from other nodes",
          "[fabric][interrupt][metrics]") {
    LocalFabric fabric({4, 8});
    SisciSession s(fabric, 4);
    sci_error_t err;
    sci_local_interrupt_t irq;
    unsigned no = 0;
    SCICreateInterrupt(s.sd, &irq, 0, &no, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    sci_local_data_interrupt_t dirq;
    unsigned dno = 0;
    SCICreateDataInterrupt(s.sd, &dirq, 0, &dno, nullptr, nullptr, 0, &err);
    REQUIRE(err == SCI_ERR_OK);
    CHECK(triggered(fabric, 4) == 0);

    CHECK(run_node_process(fabric, 8, [no, dno](sci_desc_t sd) {
              sci_error_t e;
              sci_remote_interrupt_t r;
              SCIConnectInterrupt(sd, &r, 4, 0, no, 5000, 0, &e);
              if (e != SCI_ERR_OK) {
                  return 1;
              }
              for (int i = 0; i < 3; ++i) {
                  SCITriggerInterrupt(r, 0, &e);
                  if (e != SCI_ERR_OK) {
                      return 2;
                  }
              }
              sci_remote_data_interrupt_t d;
              SCIConnectDataInterrupt(sd, &d, 4, 0, dno, 5000, 0, &e);
              if (e != SCI_ERR_OK) {
                  return 3;
              }
              char payload[8] = "abc";
              for (int i = 0; i < 2; ++i) {
                  SCITriggerDataInterrupt(d, payload, sizeof payload, 0, &e);
                  if (e != SCI_ERR_OK) {
                      return 4;
                  }
              }
              SCIDisconnectDataInterrupt(d, 0, &e);
              SCIDisconnectInterrupt(r, 0, &e);
              return 0;
          }) == 0);
    CHECK(triggered(fabric, 4) == 5);
    // A refused trigger (no such interrupt any more) is not counted; removed ones keep theirs.
    SCIRemoveInterrupt(irq, 0, &err);
    CHECK(err == SCI_ERR_OK);
    SCIRemoveDataInterrupt(dirq, 0, &err);
    CHECK(err == SCI_ERR_OK);
    CHECK(triggered(fabric, 4) == 5);
    CHECK(triggered(fabric, 8) == 0);
}
