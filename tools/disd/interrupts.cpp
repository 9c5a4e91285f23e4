// disd's interrupts. Plain and data interrupts share one path: both are an eventfd in
// semaphore mode; a data interrupt adds the payload ring, sent after the eventfd.
#include "daemon.hpp"

#include "sisci_error.h"

#include <sys/eventfd.h>

#include <cerrno>
#include <cstring>

namespace dis::disd {

namespace {

struct IntKey {
    bool data;
    std::uint32_t no;
};

IntKey int_key(const nlohmann::json& req) {
    return {wire::get_bool(req, "data"), wire::get_u32(req, "interrupt_no")};
}

// The descriptors a creator and every connector receive: the eventfd, the payload ring of a
// data interrupt, then the counters page.
void push_interrupt_fds(const Interrupt& irq, std::vector<int>& fds) {
    fds.push_back(irq.efd.get());
    if (irq.data) {
        fds.push_back(irq.ring_fd.get());
    }
    fds.push_back(irq.stats_fd.get());
}

std::uint64_t triggers_of(const Interrupt& irq) {
    auto* stats = static_cast<const wire::InterruptStats*>(irq.stats_map->get());
    return stats->triggered.load(std::memory_order_relaxed);
}

} // namespace

void Daemon::remove_interrupt(std::uint32_t no, bool data) {
    auto it = m_interrupts.find({data, no});
    if (it == m_interrupts.end()) {
        return;
    }
    for (auto& [cid, n] : it->second.connections) {
        send_to(cid, json{{"event", "interrupt_gone"},
                          {"node_id", m_opts.node_id},
                          {"interrupt_no", no},
                          {"data", data}});
    }
    m_triggers_retired += triggers_of(it->second);
    release(it->second.owner, Obj::interrupt, 0);
    m_interrupts.erase(it);
}

std::uint64_t Daemon::interrupts_triggered() const {
    std::uint64_t total = m_triggers_retired;
    for (const auto& [key, irq] : m_interrupts) {
        total += triggers_of(irq);
    }
    return total;
}

void Daemon::release_client_interrupts(int client_id) {
    std::vector<std::pair<bool, std::uint32_t>> owned;
    for (auto& [key, irq] : m_interrupts) {
        irq.connections.erase(client_id);
        if (irq.owner == client_id) {
            owned.push_back(key);
        }
    }
    for (auto& key : owned) {
        remove_interrupt(key.second, key.first);
    }
}

void Daemon::op_int_create(Request& r) {
    Client& c = r.client;
    bool data = wire::get_bool(r.body, "data");
    std::uint32_t no;
    if (wire::get_bool(r.body, "fixed")) {
        no = wire::get_u32(r.body, "interrupt_no");
        if (m_interrupts.count({data, no}) != 0) {
            refuse(SCI_ERR_BUSY, "interrupt number " + std::to_string(no) + " in use");
        }
    } else {
        while (m_interrupts.count({data, m_next_auto_intno}) != 0) {
            ++m_next_auto_intno;
        }
        no = m_next_auto_intno++;
    }
    Interrupt irq;
    irq.no = no;
    irq.data = data;
    irq.owner = c.id;
    irq.owner_uid = c.uid;
    irq.shared_access = wire::get_bool(r.body, "shared_access");
    // Semaphore mode: every trigger is one wake-up, none are merged.
    irq.efd = wire::Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE));
    if (!irq.efd.valid()) {
        refuse(SCI_ERR_NOSPC, std::string("eventfd: ") + std::strerror(errno));
    }
    if (data) {
        irq.ring_fd = make_memfd("dis-dataint-" + std::to_string(no), sizeof(wire::DataRing));
    }
    irq.stats_fd = make_memfd("dis-int-stats-" + std::to_string(no), wire::k_interrupt_stats_bytes);
    irq.stats_map = std::make_shared<wire::Mapping>(
        wire::map_shared(irq.stats_fd.get(), wire::k_interrupt_stats_bytes));
    if (irq.stats_map->get() == nullptr) {
        refuse(SCI_ERR_NOSPC, std::string("mmap: ") + std::strerror(errno));
    }
    charge(c, Obj::interrupt, 0);
    push_interrupt_fds(irq, r.reply_fds);
    r.reply["interrupt_no"] = no;
    m_interrupts.emplace(std::make_pair(data, no), std::move(irq));
}

void Daemon::op_int_remove(Request& r) {
    auto key = int_key(r.body);
    auto it = m_interrupts.find({key.data, key.no});
    if (it == m_interrupts.end()) {
        refuse(SCI_ERR_NO_SUCH_INTNO, "no interrupt " + std::to_string(key.no));
    }
    if (it->second.owner != r.client.id) {
        refuse(SCI_ERR_ACCESS, "interrupt belongs to another process");
    }
    remove_interrupt(key.no, key.data);
    r.reply["interrupt_no"] = key.no;
}

void Daemon::op_int_connect(Request& r) {
    auto key = int_key(r.body);
    auto it = m_interrupts.find({key.data, key.no});
    if (it == m_interrupts.end()) {
        refuse(SCI_ERR_NO_SUCH_INTNO, "no interrupt " + std::to_string(key.no));
    }
    Interrupt& irq = it->second;
    if (!may_access(r.client, irq.owner_uid, irq.shared_access)) {
        refuse(SCI_ERR_ACCESS, "interrupt belongs to another user");
    }
    ++irq.connections[r.client.id];
    push_interrupt_fds(irq, r.reply_fds);
    r.reply["interrupt_no"] = key.no;
}

void Daemon::op_int_disconnect(Request& r) {
    auto key = int_key(r.body);
    auto it = m_interrupts.find({key.data, key.no});
    if (it != m_interrupts.end()) {
        auto conn = it->second.connections.find(r.client.id);
        if (conn != it->second.connections.end() && --conn->second == 0) {
            it->second.connections.erase(conn);
        }
    }
    r.reply["interrupt_no"] = key.no;
}

} // namespace dis::disd
