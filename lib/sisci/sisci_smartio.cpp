// SmartIO: borrowing devices from a lender node's pool (disd's dev_* requests), the device
// list and SCI_Q_DEVICE queries, PCIe requesters and device interrupts. A borrow is a lease on
// the lender (fdid >> 16); the runtime renews it (client.cpp) and routes its events.
#include "sisci_smartio.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <tuple>

namespace smartio = dis::sisci::smartio;

namespace {

// A number of the device json: the schema prints ids as hex strings ("0x80000").
std::uint64_t json_number(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) {
        return 0;
    }
    if (it->is_number_unsigned() || it->is_number_integer()) {
        return it->get<std::uint64_t>();
    }
    if (it->is_string()) {
        return std::strtoull(it->get<std::string>().c_str(), nullptr, 0);
    }
    return 0;
}

void fill_info(const json& dev, sci_smartio_device_info_t* info) {
    std::memset(info, 0, sizeof *info);
    info->fdid = static_cast<unsigned>(json_number(dev, "fdid"));
    info->nodeid = info->fdid >> 16;
    info->adapter = 0;
    info->bdf = info->fdid & 0xFFFFu;
    info->pci_vendor_id = static_cast<unsigned>(json_number(dev, "vendor_id"));
    info->pci_device_id = static_cast<unsigned>(json_number(dev, "device_id"));
    info->pci_class = static_cast<unsigned>(json_number(dev, "class"));
    if (auto b = dev.find("bars"); b != dev.end() && b->is_array()) {
        info->num_bars = static_cast<unsigned>(b->size());
    }
    std::string name = dev.value("name", std::string());
    std::strncpy(info->user_name, name.c_str(), sizeof info->user_name - 1);
}

// Every field of the filter that is set must match.
bool matches(const sci_smartio_device_info_t& f, const sci_smartio_device_info_t& d) {
    auto ok = [](unsigned want, unsigned have) { return want == 0 || want == have; };
    return ok(f.fdid, d.fdid) && ok(f.nodeid, d.nodeid) && ok(f.pci_vendor_id, d.pci_vendor_id) &&
           ok(f.pci_device_id, d.pci_device_id) && ok(f.pci_class, d.pci_class) &&
           ok(f.num_bars, d.num_bars) &&
           (f.user_name[0] == '\0' ||
            std::strncmp(f.user_name, d.user_name, sizeof f.user_name) == 0);
}

// The connection to the lender of fdid; an fdid whose node does not exist is NO_SUCH_FDID.
std::shared_ptr<Conn> lender(Runtime* rt, unsigned int fdid, sci_error_t& err) {
    unsigned node = fdid >> 16;
    if (!valid_node_id(node)) {
        err = SCI_ERR_NO_SUCH_FDID;
        return nullptr;
    }
    auto c = rt->conn(node, err);
    if (!c && (err == SCI_ERR_NO_SUCH_NODEID || err == SCI_ERR_ILLEGAL_NODEID)) {
        err = SCI_ERR_NO_SUCH_FDID;
    }
    return c;
}

struct Join {
    std::int64_t lease_id = 0;
    std::string token;
};

// $DIS_SMARTIO_JOIN="FDID:LEASE_ID:TOKEN[,...]": the lease a parent (`dis-tool device borrow
// FDID -- CMD`) holds for fdid, which this process joins instead of borrowing anew.
std::optional<Join> join_for(unsigned int fdid) {
    const char* env = std::getenv("DIS_SMARTIO_JOIN");
    if (env == nullptr) {
        return std::nullopt;
    }
    std::string all(env);
    std::size_t pos = 0;
    while (pos <= all.size()) {
        std::size_t end = all.find(',', pos);
        std::string item =
            all.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        std::size_t a = item.find(':');
        std::size_t b = a == std::string::npos ? a : item.find(':', a + 1);
        if (b != std::string::npos && std::strtoul(item.substr(0, a).c_str(), nullptr, 0) == fdid) {
            return Join{std::strtoll(item.substr(a + 1, b - a - 1).c_str(), nullptr, 0),
                        item.substr(b + 1)};
        }
        if (end == std::string::npos) {
            break;
        }
        pos = end + 1;
    }
    return std::nullopt;
}

// $DIS_SMARTIO_LEASE_MS: the lease this process asks for (0: the lender's default).
std::uint64_t lease_ms_wanted() {
    const char* env = std::getenv("DIS_SMARTIO_LEASE_MS");
    return env == nullptr ? 0 : std::strtoull(env, nullptr, 10);
}

// PCIe requesters registered per descriptor (SCIRegisterPCIeRequester).
std::mutex g_requester_mutex;
std::set<std::tuple<sci_desc_t, unsigned, unsigned>> g_requesters;

} // namespace

// ==================================== discovery ====================================

SCI_API size_t SCIGetDeviceList(sci_desc_t sd, unsigned int* fdids, size_t length,
                                const sci_smartio_device_info_t* filter, unsigned int flags,
                                sci_error_t* error) {
    Check c(error);
    if (!c.runtime()
             .handle(sd, Magic::desc)
             .param(fdids != nullptr || length == 0)
             .flags(flags, 0)) {
        return 0;
    }
    std::vector<unsigned> found;
    for (auto node : wire::list_node_sockets(c.rt()->fabric_dir())) {
        sci_error_t err;
        auto conn = c.rt()->conn(node, err);
        if (!conn) {
            continue; // an unreachable node lends nothing now
        }
        Reply r = conn->call({{"op", "dev_list"}});
        auto devs = r.body.find("devices");
        if (r.err != SCI_ERR_OK || devs == r.body.end() || !devs->is_array()) {
            continue;
        }
        for (const auto& d : *devs) {
            sci_smartio_device_info_t info;
            fill_info(d, &info);
            if (info.fdid != 0 && d.value("state", std::string()) != "removed" &&
                (filter == nullptr || matches(*filter, info))) {
                found.push_back(info.fdid);
            }
        }
    }
    std::sort(found.begin(), found.end());
    std::copy_n(found.begin(), std::min(found.size(), length), fdids);
    set(error, SCI_ERR_OK);
    return found.size();
}

namespace dis::sisci {

void query_device(void* data, unsigned int flags, sci_error_t* error) {
    auto* q = static_cast<sci_smartio_query_device_t*>(data);
    Check c(error);
    if (!c.flags(flags, 0).runtime().that(q->subcommand == SCI_Q_DEVICE_INFO,
                                          SCI_ERR_ILLEGAL_QUERY) ||
        !c.param(q->data != nullptr)) {
        return;
    }
    sci_error_t err;
    auto conn = lender(c.rt(), q->fdid, err);
    if (!c.status(conn ? SCI_ERR_OK : err)) {
        return;
    }
    Reply r = conn->call({{"op", "dev_show"}, {"fdid", q->fdid}});
    auto dev = r.body.find("device");
    if (!c.status(r.err) || !c.that(dev != r.body.end() && dev->is_object(), SCI_ERR_SYSTEM)) {
        return;
    }
    fill_info(*dev, static_cast<sci_smartio_device_info_t*>(q->data));
    set(error, SCI_ERR_OK);
}

} // namespace dis::sisci

// ===================================== borrowing =====================================

SCI_API void SCIBorrowDevice(sci_desc_t sd, sci_smartio_device_t* device, unsigned int fdid,
                             unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.runtime()
             .handle(sd, Magic::desc)
             .param(device != nullptr)
             .flags(flags, SCI_FLAG_EXCLUSIVE)) {
        return;
    }
    sci_error_t err;
    auto conn = lender(c.rt(), fdid, err);
    if (!c.status(conn ? SCI_ERR_OK : err)) {
        return;
    }
    auto st = std::make_shared<DeviceState>();
    st->conn = conn;
    st->fdid = fdid;
    json req = {{"op", "dev_borrow"}, {"fdid", fdid}};
    if (auto join = join_for(fdid)) {
        req["join"] = {{"lease_id", join->lease_id}, {"token", join->token}};
        st->joined = true;
        st->lease_id = join->lease_id;
        st->token = join->token;
    } else {
        req["exclusive"] = (flags & SCI_FLAG_EXCLUSIVE) != 0;
        req["lease_ms"] = lease_ms_wanted();
    }
    Reply r = conn->call(req);
    if (!c.status(r.err)) {
        return;
    }
    const json lease = r.body.value("lease", json::object());
    st->device = r.body.value("device", json::object());
    if (!st->joined) {
        st->lease_id = lease.value("id", std::int64_t{0});
        st->token = lease.value("token", std::string());
    }
    st->exclusive = lease.contains("mode") ? lease.value("mode", std::string()) == "exclusive"
                                           : (flags & SCI_FLAG_EXCLUSIVE) != 0;
    st->ttl_ms = lease.value("ttl_ms", std::uint32_t{10000});
    st->next_renew =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(st->ttl_ms / 3, 1u));
    auto* h = new sci_smartio_device();
    h->sd = sd;
    h->state = st;
    c.rt()->add(st);
    hand_out(h, device, error);
}

SCI_API void SCIReturnDevice(sci_smartio_device_t device, unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.handle(device, Magic::smartio_device).flags(flags, 0)) {
        return;
    }
    auto& st = device->state;
    bool lost;
    std::vector<ForDevice> maps;
    std::vector<std::uint64_t> created;
    {
        std::lock_guard lock(st->mutex);
        lost = st->lost;
        // The vendor's rule: what was made with the device goes first (after a loss the lender
        // has dropped it already, so only the handle's records go).
        if (!c.that(lost || (st->segments == 0 && st->maps.empty()), SCI_ERR_BUSY)) {
            return;
        }
        st->returned = true;
        maps.swap(st->maps);
        created.swap(st->created);
    }
    if (!lost && !st->conn->lost()) {
        Reply r;
        if (st->joined) {
            // Not our lease: only what this process made on it goes.
            for (auto seg : created) {
                st->conn->call(
                    {{"op", "dev_disconnect"}, {"lease_id", st->lease_id}, {"segment", seg}});
            }
        } else {
            r = st->conn->call({{"op", "dev_return"}, {"lease_id", st->lease_id}});
        }
        // A lease that ended meanwhile (its dev_lost on the way) is returned all the same.
        if (r.err != SCI_ERR_OK && r.err != SCI_ERR_NODE_NOT_RESPONDING &&
            r.err != SCI_ERR_ILLEGAL_PARAMETER) {
            std::lock_guard lock(st->mutex);
            st->returned = false;
            st->maps.swap(maps);
            st->created.swap(created);
            set(error, r.err);
            return;
        }
    }
    for (const auto& m : maps) {
        if (m.local != nullptr) {
            m.local->maps -= m.refs;
        } else {
            m.remote->maps -= m.refs;
        }
    }
    if (Runtime* rt = Runtime::get()) {
        rt->remove(st);
    }
    destroy(device);
    set(error, SCI_ERR_OK);
}

SCI_API void SCIReleaseExclusiveBorrow(sci_smartio_device_t device, unsigned int flags,
                                       sci_error_t* error) {
    Check c(error);
    if (!smartio::usable(c, device) || !c.flags(flags, 0)) {
        return;
    }
    auto& st = device->state;
    if (!c.that(st->exclusive && !st->joined, SCI_ERR_ILLEGAL_OPERATION)) {
        return;
    }
    Reply r = st->conn->call({{"op", "dev_share"}, {"lease_id", st->lease_id}});
    if (!c.status(r.err)) {
        return;
    }
    st->exclusive = false;
    set(error, SCI_ERR_OK);
}

SCI_API unsigned int SCIGetFabricDeviceId(sci_smartio_device_t device) {
    return valid(device, Magic::smartio_device) ? device->state->fdid : 0;
}

// ================================ requesters, interrupts ================================

SCI_API void SCIRegisterPCIeRequester(sci_desc_t sd, unsigned int localAdapterNo, unsigned int bus,
                                      unsigned int devfn, unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.runtime()
             .handle(sd, Magic::desc)
             .adapter(localAdapterNo)
             .param(bus <= 0xFF && devfn <= 0xFF)
             .flags(flags, SCI_FLAG_PCIE_REQUESTER_GLOBAL)) {
        return;
    }
    std::lock_guard lock(g_requester_mutex);
    if (!c.that(g_requesters.emplace(sd, bus, devfn).second, SCI_ERR_ILLEGAL_OPERATION)) {
        return;
    }
    ++sd->objects; // SCIClose waits for the unregistration, as for any handle
    set(error, SCI_ERR_OK);
}

SCI_API void SCIUnregisterPCIeRequester(sci_desc_t sd, unsigned int localAdapterNo,
                                        unsigned int bus, unsigned int devfn, unsigned int flags,
                                        sci_error_t* error) {
    Check c(error);
    if (!c.handle(sd, Magic::desc)
             .adapter(localAdapterNo)
             .flags(flags, SCI_FLAG_PCIE_REQUESTER_GLOBAL)) {
        return;
    }
    std::lock_guard lock(g_requester_mutex);
    if (!c.param(g_requesters.erase({sd, bus, devfn}) == 1)) {
        return;
    }
    --sd->objects;
    set(error, SCI_ERR_OK);
}

SCI_API void SCIDisWaitForDeviceInterrupt(sci_smartio_device_t device, unsigned int* type,
                                          unsigned int* number, unsigned int timeout,
                                          unsigned int flags, sci_error_t* error) {
    Check c(error);
    if (!c.handle(device, Magic::smartio_device).flags(flags, 0)) {
        return;
    }
    auto& st = device->state;
    std::unique_lock lock(st->mutex);
    auto ready = [&] { return !st->irqs.empty() || st->lost; };
    if (timeout == SCI_INFINITE_TIMEOUT) {
        st->cv.wait(lock, ready);
    } else if (!st->cv.wait_for(lock, std::chrono::milliseconds(timeout), ready)) {
        set(error, SCI_ERR_TIMEOUT);
        return;
    }
    // Interrupts that came before a loss are still delivered.
    if (st->irqs.empty()) {
        set(error, st->lost_err);
        return;
    }
    auto [t, n] = st->irqs.front();
    st->irqs.pop_front();
    if (type != nullptr) {
        *type = t;
    }
    if (number != nullptr) {
        *number = n;
    }
    set(error, SCI_ERR_OK);
}

// The vendor link names of this file's entry points (see api_util.hpp).
SCI_VENDOR_NAMES(SCIGetDeviceList)
SCI_VENDOR_NAMES(SCIBorrowDevice)
SCI_VENDOR_NAMES(SCIReturnDevice)
SCI_VENDOR_NAMES(SCIReleaseExclusiveBorrow)
SCI_VENDOR_NAMES(SCIGetFabricDeviceId)
SCI_VENDOR_NAMES(SCIRegisterPCIeRequester)
SCI_VENDOR_NAMES(SCIUnregisterPCIeRequester)
SCI_VENDOR_NAMES(SCIDisWaitForDeviceInterrupt)
