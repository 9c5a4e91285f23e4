// Admin client of the software fabric (stub until the daemon lands).
#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"

namespace dis::fabric {
struct AdminClient::Impl {};
AdminClient::AdminClient(const std::string&, std::uint32_t, std::chrono::milliseconds) {
    throw Error(ErrorKind::fabric_down, "admin interface not implemented yet");
}
AdminClient::~AdminClient() = default;
AdminClient::AdminClient(AdminClient&&) noexcept = default;
AdminClient& AdminClient::operator=(AdminClient&&) noexcept = default;
NodeInfo AdminClient::node_info() {
    return {};
}
std::vector<SegmentInfo> AdminClient::segments() {
    return {};
}
std::vector<LinkInfo> AdminClient::links() {
    return {};
}
void AdminClient::shutdown() {}
std::string resolve_fabric_dir(const std::optional<std::string>& flag) {
    return flag.value_or("/run/dis");
}
std::string node_socket_path(const std::string& d, std::uint32_t id) {
    return d + "/node-" + std::to_string(id) + ".sock";
}
std::vector<std::uint32_t> discover_nodes(const std::string&) {
    return {};
}
} // namespace dis::fabric
