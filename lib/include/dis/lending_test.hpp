// `dis-tool device test`: the kernel's pci_endpoint_test suite (dis/endpoint_pcitest.hpp) run
// against a lent epf-test device through the SISCI SmartIO API, as a borrower program would:
// the device is borrowed exclusively (SCIBorrowDevice), its BARs connected and mapped
// (SCIConnectDeviceSegment), the suite's buffers are local segments mapped for the device
// (SCIMapLocalSegmentForDevice) and its interrupts come through SCIDisWaitForDeviceInterrupt.
#pragma once

#include "dis/endpoint_pcitest.hpp"
#include "dis/lending_fdid.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace dis::lending {

struct DeviceTestOptions {
    Fdid fdid;
    // Where libsisci finds the fabric and which node this process is (DIS_FABRIC,
    // DIS_NODE_ID); empty / 0: as the environment says.
    std::string fabric_dir;
    std::uint32_t local_node = 0;
    endpoint::TestOptions suite; // on_result sees each result as it is known
};

struct DeviceTestReport {
    std::vector<endpoint::TestResult> results;
    // Set when the device was lost during the suite (reclaimed, a fault, the lender gone):
    // the results stop there and the last one is DEVICE_LOST, FAILED.
    std::string lost;
};

// Refuses (Error invalid_input) a device that is not an epf-test function; a busy or unknown
// device fails as SCIBorrowDevice does (busy, not_found), naming the fdid and, on the software
// fabric, its state and holder.
DeviceTestReport test_device(const DeviceTestOptions& options);

// Refuses (Error invalid_input) a device that is not an epf-test function, saying `purpose`
// ("device test runs ... on epf-test devices only"): the lender says its kind (software
// fabric; `fabric_dir` empty: as the environment says), or a vendor SISCI its ids.
void require_epf_test(Fdid fdid, const std::string& fabric_dir, std::string_view purpose);

} // namespace dis::lending
