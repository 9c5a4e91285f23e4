// disd and the vfio device kind on the host: a vfio device that cannot be had stops the
// daemon at start with an error naming the device (never a half-declared pool). The host's
// own devices are never opened: the addresses here do not exist. Opening real functions is
// tested in the VM (tests/vm/guest/smartio.sh).
#include "test_lending_disd_support.hpp"

using namespace dis::test;

TEST_CASE("vfio disd: a vfio device that does not exist stops the daemon with exit 2") {
    TempDir tmp;
    auto run = dis::test::run({DIS_DISD_PATH, "--node-id", "4", "--fabric", tmp.path().string(),
                               "--device", "vfio:ffff:ff:1f.7,name=none"});
    CHECK(run.exit_code == 2);
    CHECK(run.err.find("device 'vfio:ffff:ff:1f.7,name=none'") != std::string::npos);
    CHECK(run.err.find("no PCI device ffff:ff:1f.7") != std::string::npos);
}

TEST_CASE("vfio disd: a vfio line in the config is taken, a malformed one refused naming it") {
    TempDir tmp;
    auto config = write_file((tmp.path() / "fabric.conf").string(),
                             "node 4\ndevice 4 vfio:04:00.0,colour=red\n");
    auto run = dis::test::run({DIS_DISD_PATH, "--node-id", "4", "--fabric",
                               (tmp.path() / "fab").string(), "--config", config});
    CHECK(run.exit_code == 2);
    CHECK(run.err.find("device 'vfio:04:00.0,colour=red'") != std::string::npos);
    CHECK(run.err.find("the only option is name") != std::string::npos);
    // A well-formed line reaches the device (which does not exist here).
    write_file(config, "node 4\ndevice 4 vfio:ffff:fe:00.0,name=x   # a comment\n");
    run = dis::test::run({DIS_DISD_PATH, "--node-id", "4", "--fabric",
                          (tmp.path() / "fab").string(), "--config", config});
    CHECK(run.exit_code == 2);
    CHECK(run.err.find("no PCI device ffff:fe:00.0") != std::string::npos);
}
