// Admin client of the software fabric: one blocking wire::Channel to a node daemon.
#include "dis/fabric_admin.hpp"

#include "dis/error.hpp"
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

    nlohmann::json call(const std::string& op) {
        wire::Message m;
        try {
            m = channel.call({{"op", op}});
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

NodeInfo AdminClient::node_info() {
    auto body = m_impl->call("node_info");
    try {
        const auto& n = body.at("node");
        NodeInfo info;
        info.node_id = n.at("node_id").get<std::uint32_t>();
        info.name = n.at("name").get<std::string>();
        info.pid = n.at("pid").get<pid_t>();
        info.uptime_s = n.at("uptime_s").get<std::uint64_t>();
        for (const auto& a : n.at("adapters")) {
            AdapterInfo ai;
            ai.adapter_no = a.at("adapter_no").get<std::uint32_t>();
            ai.node_id = a.at("node_id").get<std::uint32_t>();
            ai.card_type = a.at("card_type").get<std::string>();
            ai.serial = a.at("serial").get<std::uint64_t>();
            ai.links = a.at("links").get<std::uint32_t>();
            ai.link_operational = a.at("link_operational").get<bool>();
            ai.link_width = a.at("link_width").get<std::uint32_t>();
            ai.link_speed = a.at("link_speed").get<std::string>();
            ai.dma_alignment = a.at("dma_alignment").get<std::uint32_t>();
            info.adapters.push_back(ai);
        }
        for (const auto& [k, v] : n.at("counters").items()) {
            info.counters[k] = v.get<std::uint64_t>();
        }
        return info;
    } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::fabric_down, std::string("bad node_info reply: ") + e.what());
    }
}

std::vector<SegmentInfo> AdminClient::segments() {
    auto body = m_impl->call("segments");
    std::vector<SegmentInfo> out;
    try {
        for (const auto& s : body.at("segments")) {
            SegmentInfo si;
            si.node_id = s.at("node_id").get<std::uint32_t>();
            si.segment_id = s.at("segment_id").get<std::uint32_t>();
            si.adapter_no = s.at("adapter_no").get<std::uint32_t>();
            si.size = s.at("size").get<std::uint64_t>();
            si.owner_pid = s.at("owner_pid").get<pid_t>();
            si.owner_uid = s.at("owner_uid").get<uid_t>();
            si.state = s.at("state").get<std::string>();
            si.connections = s.at("connections").get<std::uint32_t>();
            si.mappings = s.at("mappings").get<std::uint32_t>();
            si.broadcast = s.at("broadcast").get<bool>();
            out.push_back(si);
        }
    } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::fabric_down, std::string("bad segments reply: ") + e.what());
    }
    return out;
}

std::vector<LinkInfo> AdminClient::links() {
    auto body = m_impl->call("links");
    std::vector<LinkInfo> out;
    try {
        for (const auto& l : body.at("links")) {
            LinkInfo li;
            li.local_node = l.at("local_node").get<std::uint32_t>();
            li.remote_node = l.at("remote_node").get<std::uint32_t>();
            li.state = l.at("state").get<std::string>();
            li.width = l.at("width").get<std::uint32_t>();
            li.speed = l.at("speed").get<std::string>();
            out.push_back(li);
        }
    } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::fabric_down, std::string("bad links reply: ") + e.what());
    }
    return out;
}

void AdminClient::shutdown() {
    m_impl->call("shutdown");
}

} // namespace dis::fabric
