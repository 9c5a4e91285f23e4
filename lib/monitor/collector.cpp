// The monitor's collector: the fabric through the exporter's sampler (dis/fabric_sample.hpp,
// one admin connection per node kept open), the host's PCIe through pci::scan (rarely: see
// CollectorOptions::pcie_interval) and devices through a DeviceSource. Only what the layout
// shows is fetched.
#include "dis/monitor.hpp"

#include <cmath>
#include <ctime>

namespace dis::monitor {

namespace {

using Clock = std::chrono::steady_clock;

std::string wall_time() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    ::localtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return buf;
}

std::string source_name(const pci::Source& s) {
    switch (s.kind) {
    case pci::Source::Kind::live:
        return "live";
    case pci::Source::Kind::dump:
        return "dump " + s.path;
    case pci::Source::Kind::sysfs:
        return "sysfs " + s.path;
    }
    return "";
}

struct AerSums {
    std::uint64_t correctable = 0, nonfatal = 0, fatal = 0;
};

AerSums aer_sums(const pci::Aer& aer) {
    AerSums s;
    for (const auto& [file, counts] : aer.counters) {
        std::uint64_t sum = 0;
        for (const auto& [name, value] : counts)
            if (name.rfind("TOTAL_", 0) != 0) // the kernel's TOTAL_ line is the sum
                sum += value;
        if (file == "aer_dev_correctable")
            s.correctable = sum;
        else if (file == "aer_dev_nonfatal")
            s.nonfatal = sum;
        else if (file == "aer_dev_fatal")
            s.fatal = sum;
    }
    return s;
}

// Counters that went down (a reset device) start their delta again from zero.
std::uint64_t since(std::uint64_t now, std::uint64_t& base) {
    if (now < base)
        base = now;
    return now - base;
}

} // namespace

std::optional<double> counter_rate(std::uint64_t before, std::uint64_t after, double seconds) {
    if (after < before || !(seconds > 0))
        return std::nullopt;
    return static_cast<double>(after - before) / seconds;
}

struct Collector::Impl {
    CollectorOptions options;
    std::unique_ptr<fabric::FabricSampler> sampler;
    struct Previous {
        Clock::time_point at;
        std::uint64_t pid = 0;
        std::uint64_t transfers = 0, bytes = 0, errors = 0, triggers = 0;
    };
    std::map<std::uint32_t, Previous> previous;
    std::map<std::string, AerSums> aer_base; // by BDF: the first counters seen
    PcieData pcie;
    std::optional<Clock::time_point> pcie_at;

    void scan_pcie() {
        PcieData d;
        d.source = source_name(*options.pci);
        try {
            const auto topology = pci::scan(*options.pci);
            for (const auto& dev : topology.devices()) {
                if (!dev.link && !(dev.aer && !dev.aer->counters.empty()))
                    continue;
                PcieRow r;
                r.bdf = dev.bdf.to_string();
                r.name = !dev.device_name.empty() ? dev.device_name : dev.class_name;
                r.port_type = dev.port_type ? pci::to_string(*dev.port_type) : "";
                if (dev.link) {
                    r.speed = dev.link->speed;
                    r.max_speed = dev.link->max_speed;
                    r.width = dev.link->width;
                    r.max_width = dev.link->max_width;
                    r.downgraded = dev.link->downgraded;
                    r.dl_active = dev.link->dl_active;
                }
                if (dev.aer && !dev.aer->counters.empty()) {
                    r.has_aer_counters = true;
                    const auto now = aer_sums(*dev.aer);
                    auto [it, fresh] = aer_base.try_emplace(r.bdf, now);
                    r.correctable = since(now.correctable, it->second.correctable);
                    r.nonfatal = since(now.nonfatal, it->second.nonfatal);
                    r.fatal = since(now.fatal, it->second.fatal);
                }
                d.rows.push_back(std::move(r));
            }
            d.available = true;
        } catch (const std::exception& e) {
            d.note = e.what();
        }
        pcie = std::move(d);
        pcie_at = Clock::now();
    }
};

Collector::Collector(CollectorOptions options) : m_impl(std::make_unique<Impl>()) {
    m_impl->options = std::move(options);
    auto& o = m_impl->options;
    if (o.fabric_dir)
        m_impl->sampler = std::make_unique<fabric::FabricSampler>(*o.fabric_dir, o.node_timeout,
                                                                  /*keep_connections=*/true);
    if (!o.devices)
        o.devices = make_device_source(o.fabric_dir.value_or(""));
    if (o.pci)
        m_impl->scan_pcie(); // the baseline of "AER errors since start"
}

Collector::~Collector() = default;

Snapshot Collector::sample(const Demand& demand) {
    auto& im = *m_impl;
    Snapshot s;
    s.time = wall_time();
    if (im.sampler) {
        s.fabric_dir = im.sampler->dir();
        // Node rows carry the rates, so nodes are sampled whenever anything fabric is shown.
        auto nodes = im.sampler->sample(demand.segments);
        const auto now = Clock::now();
        for (auto& n : nodes) {
            NodeRow row;
            if (n.up) {
                const auto transfers = n.info.counter("dma_transfers_total");
                const auto bytes = n.info.counter("dma_bytes_total");
                const auto errors = n.info.counter("dma_errors_total");
                const auto triggers = n.info.counter("interrupts_triggered_total");
                auto it = im.previous.find(n.id);
                if (it != im.previous.end() &&
                    it->second.pid == static_cast<std::uint64_t>(n.info.pid)) {
                    const double dt = std::chrono::duration<double>(now - it->second.at).count();
                    row.rates.dma_transfers = counter_rate(it->second.transfers, transfers, dt);
                    row.rates.dma_bytes = counter_rate(it->second.bytes, bytes, dt);
                    row.rates.dma_errors = counter_rate(it->second.errors, errors, dt);
                    row.rates.interrupts = counter_rate(it->second.triggers, triggers, dt);
                }
                im.previous[n.id] = {now,       static_cast<std::uint64_t>(n.info.pid),
                                     transfers, bytes,
                                     errors,    triggers};
                if (n.segments) {
                    for (auto& seg : *n.segments)
                        s.segments.push_back(std::move(seg));
                    n.segments.reset();
                }
            } else {
                im.previous.erase(n.id);
            }
            row.sample = std::move(n);
            s.nodes.push_back(std::move(row));
        }
        s.segments_fetched = demand.segments;
        if (s.nodes.empty())
            s.fabric_note = "no node daemon in " + s.fabric_dir;
    } else {
        s.fabric_note =
            im.options.fabric_note.empty() ? "no fabric directory" : im.options.fabric_note;
    }
    if (demand.devices)
        s.devices = im.options.devices->fetch();
    else
        s.devices.note = "not fetched (pane hidden)";
    if (im.options.pci) {
        const bool stale = !im.pcie_at || Clock::now() - *im.pcie_at >= im.options.pcie_interval;
        if (demand.pcie && stale)
            im.scan_pcie();
        s.pcie = im.pcie;
        s.pcie.age_s = std::chrono::duration<double>(Clock::now() - *im.pcie_at).count();
    } else {
        s.pcie.note = "no PCIe source";
    }
    return s;
}

} // namespace dis::monitor
