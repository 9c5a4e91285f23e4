// The lending policy: which nodes and uids may borrow which devices, exclusive-only or
// shareable, the maximum lease, priority and reset on release. Read from a hand-written TOML
// file, format in dis-tool-lending-policy(5); errors name the file, line and key.
#pragma once

#include "dis/lending_fdid.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dis::lending {

struct DeviceInfo {
    Fdid fdid;
    std::uint16_t vendor_id = 0;
    std::uint16_t device_id = 0;
    std::uint32_t class_code = 0; // 24 bits: base class, subclass, programming interface
    std::string name;
};

struct Borrower {
    std::uint32_t node_id = 0;
    std::int64_t pid = 0;
    std::uint32_t uid = 0;
};

enum class Mode { exclusive, shared };
const char* to_string(Mode mode) noexcept;

// Properties a rule grants; a rule's unset keys take [default]'s values.
struct Grant {
    bool exclusive_only = false;
    std::chrono::milliseconds max_lease{std::chrono::hours(1)};
    int priority = 0;
    bool reset_on_release = true;
};

struct PolicyRule {
    int number = 0; // 1-based, in file order
    int line = 0;
    std::string name;
    // Device selector: every key given must match.
    std::vector<Fdid> fdids;
    std::optional<std::uint16_t> vendor_id;
    std::optional<std::uint16_t> device_id;
    std::optional<std::uint32_t> class_value; // compared on the top class_digits hex digits
    int class_digits = 0;                     // 2 (base), 4 (base+sub) or 6 (full)
    // Borrower selector: empty = any.
    std::vector<std::uint32_t> nodes;
    std::vector<std::uint32_t> uids;
    bool allow = true;
    Grant grant;

    bool matches_device(const DeviceInfo& device) const;
    bool matches_borrower(const Borrower& borrower) const;
};

struct Decision {
    bool allowed = false;
    std::string rule; // "rule 3 (gpus, line 12)" or "the default"
    std::string why;  // why it was refused, empty when allowed
    Grant grant;
};

class Policy {
public:
    // Everything allowed, shareable, one-hour leases, reset on release.
    Policy() = default;
    // Throws dis::Error(invalid_input) "NAME:LINE: key 'K': ..." on any mistake.
    static Policy parse(std::string_view text, std::string_view source_name = "policy");
    static Policy load(const std::filesystem::path& path);

    // The first rule matching both the device and the borrower decides; without one,
    // [default] does. A shared request under an exclusive-only rule is refused by that rule.
    Decision decide(const DeviceInfo& device, const Borrower& borrower, Mode mode) const;

    const std::vector<PolicyRule>& rules() const { return m_rules; }
    bool default_allow() const { return m_default_allow; }
    const Grant& default_grant() const { return m_default; }

private:
    std::vector<PolicyRule> m_rules;
    Grant m_default;
    bool m_default_allow = true;
};

} // namespace dis::lending
