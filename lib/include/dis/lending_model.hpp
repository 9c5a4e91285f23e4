// The lending model's JSON: the one schema of devices, leases and audit rows on disd's wire
// (dev_list, dev_show, dev_borrow, dev_history) and in `dis-tool device ... -o json`. disd
// writes it, the lending client reads it back; tools/disd/README.md shows the fields.
#pragma once

#include "dis/lending.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dis::lending {

// A device as a lender reports it: the pool's status plus what the endpoint declares.
struct DeviceView {
    DeviceStatus status;
    std::uint32_t node_id = 0;
    std::string kind; // "epf-test" or "memory" ("" for a device only the pool knows)
    std::vector<std::uint64_t> bars;
    std::optional<Fdid> physfn; // a virtual function's physical function
};

// Times are unix milliseconds ("granted_ms", "since_ms", ...); fdids and PCI ids hex strings
// ("0x80000", "0x104c"). Readers throw dis::Error(invalid_input) on a missing or mistyped
// field.
nlohmann::json to_json(const Lease& lease);
nlohmann::json to_json(const DeviceView& device);
nlohmann::json to_json(const AuditRow& row);
Lease lease_from_json(const nlohmann::json& j);
DeviceView device_from_json(const nlohmann::json& j);
AuditRow audit_from_json(const nlohmann::json& j);

std::int64_t to_unix_ms(TimePoint t);
TimePoint from_unix_ms(std::int64_t ms);

} // namespace dis::lending
