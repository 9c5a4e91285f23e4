// Admin client of the software fabric: one blocking wire::Channel to a node daemon.
#include "dis/fabric_admin.hpp"

#include "dis/error.hpp"
#include "dis/fabric_model.hpp"
#include "fabric_dir.hpp"
#include "wire.hpp"

#include <unistd.h>

#include <cstdlib>

namespace dis::fabric {

std::string resolve_fabric_dir(const std::optional<std::string>& flag) {
    auto choice = wire::choose_fabric_dir(flag);
    if (choice.path.empty()) {
        throw Error(ErrorKind::invalid_input, choice.error);
    }
    // A directory that does not exist yet is fine here (fabric start creates it, status
    // reports no nodes); one that exists must be trustworthy.
    auto check = wire::check_fabric_dir(choice.path, wire::client_fabric_dir_policy());
    if (check.state == wire::FabricDirState::untrusted) {
        throw Error(ErrorKind::permission, check.error);
    }
    return choice.path;
}

std::string node_socket_path(const std::string& fabric_dir, std::uint32_t node_id) {
    return wire::socket_path(fabric_dir, node_id);
}

std::vector<std::uint32_t> discover_nodes(const std::string& fabric_dir) {
    std::vector<std::uint32_t> alive;
    for (auto id : wire::list_node_sockets(fabric_dir)) {
        try {
            wire::Channel ch(fabric_dir, id, 0, std::chrono::milliseconds(1000));
            ch.call({{"op", "ping"}});
            alive.push_back(id);
        } catch (const wire::UntrustedPeer& e) {
            throw Error(ErrorKind::permission, e.what());
        } catch (const wire::WireError&) {
            // A stale socket of a dead node: not part of the fabric.
        }
    }
    return alive;
}

struct AdminClient::Impl {
    std::uint32_t node_id;
    wire::Channel channel;

    nlohmann::json call(const std::string& op, nlohmann::json request = nlohmann::json::object()) {
        wire::Message m;
        request["op"] = op;
        try {
            m = channel.call(request);
        } catch (const wire::WireError& e) {
            throw Error(ErrorKind::fabric_down,
                        "node " + std::to_string(node_id) + ": " + e.what());
        }
        auto err = m.body.value("err", -1);
        if (err != wire::k_reply_ok) {
            auto kind =
                err == wire::k_reply_access ? ErrorKind::permission : ErrorKind::fabric_down;
            throw Error(kind, "node " + std::to_string(node_id) + ": " +
                                  m.body.value("message", std::string("request refused")));
        }
        return m.body;
    }
};

AdminClient::AdminClient(const std::string& fabric_dir, std::uint32_t node_id,
                         std::chrono::milliseconds timeout) {
    try {
        m_impl =
            std::make_unique<Impl>(Impl{node_id, wire::Channel(fabric_dir, node_id, 0, timeout)});
    } catch (const wire::UntrustedPeer& e) {
        throw Error(ErrorKind::permission, std::string("refusing node ") + std::to_string(node_id) +
                                               " in " + fabric_dir + ": " + e.what());
    } catch (const wire::WireError& e) {
        throw Error(ErrorKind::fabric_down, std::string("cannot reach node ") +
                                                std::to_string(node_id) + " in " + fabric_dir +
                                                ": " + e.what());
    }
}

AdminClient::~AdminClient() = default;
AdminClient::AdminClient(AdminClient&&) noexcept = default;
AdminClient& AdminClient::operator=(AdminClient&&) noexcept = default;

// Replies are read through the one schema (fabric_model.hpp); a reply that does not fit it
// is a daemon we cannot understand.
template <typename T> T parse_reply(const nlohmann::json& body, const char* key) {
    try {
        return body.at(key).get<T>();
    } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::fabric_down, std::string("bad ") + key + " reply: " + e.what());
    }
}

NodeInfo AdminClient::node_info() {
    return parse_reply<NodeInfo>(m_impl->call("node_info"), "node");
}

std::vector<SegmentInfo> AdminClient::segments() {
    return parse_reply<std::vector<SegmentInfo>>(m_impl->call("segments"), "segments");
}

std::vector<LinkInfo> AdminClient::links(bool probe) {
    nlohmann::json request = nlohmann::json::object();
    if (!probe)
        request["probe"] = false;
    return parse_reply<std::vector<LinkInfo>>(m_impl->call("links", std::move(request)), "links");
}

void AdminClient::shutdown() {
    m_impl->call("shutdown");
}

} // namespace dis::fabric
