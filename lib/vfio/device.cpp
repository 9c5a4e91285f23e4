// A function bound to vfio-pci: container, group and device fds (VFIO's type1 IOMMU), its BAR
// regions, DMA mappings at allocated IO virtual addresses, MSI/MSI-X on eventfds, reset.
#include "dis/vfio.hpp"

#include "dis/error.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace dis::vfio {
namespace {

constexpr std::uint32_t k_max_vectors = 64; // MSI-X vectors enabled at most (NVMe has 65)
constexpr std::uint64_t k_page = IovaAllocator::k_page;

[[noreturn]] void fail(const std::string& bdf, const std::string& what, int err) {
    throw os_error("vfio " + bdf + ": " + what, err);
}

// The members of an IOMMU group and their drivers: "0000:02:01.0 (pcieport), 0000:04:00.0".
std::string group_members(const std::string& sysfs_root, int group) {
    std::string dir = sysfs_root + "/kernel/iommu_groups/" + std::to_string(group) + "/devices";
    std::string out;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        return "?";
    }
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') {
            continue;
        }
        std::string bdf = e->d_name;
        std::string drv;
        char buf[4096];
        std::string link = sysfs_root + "/bus/pci/devices/" + bdf + "/driver";
        ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
        if (n > 0) {
            std::string t(buf, static_cast<std::size_t>(n));
            drv = t.substr(t.rfind('/') + 1);
        }
        out += (out.empty() ? "" : ", ") + bdf + " (" + (drv.empty() ? "no driver" : drv) + ")";
    }
    ::closedir(d);
    return out;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> usable_iova(int container) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    vfio_iommu_type1_info probe{};
    probe.argsz = sizeof probe;
    if (::ioctl(container, VFIO_IOMMU_GET_INFO, &probe) != 0 ||
        (probe.flags & VFIO_IOMMU_INFO_CAPS) == 0 || probe.argsz <= sizeof probe) {
        return ranges;
    }
    std::vector<std::uint64_t> buf((probe.argsz + 7) / 8);
    auto* info = reinterpret_cast<vfio_iommu_type1_info*>(buf.data());
    info->argsz = probe.argsz;
    if (::ioctl(container, VFIO_IOMMU_GET_INFO, info) != 0 || info->cap_offset == 0) {
        return ranges;
    }
    auto* base = reinterpret_cast<const char*>(buf.data());
    std::uint32_t off = info->cap_offset;
    while (off != 0 && off + sizeof(vfio_info_cap_header) <= probe.argsz) {
        auto* hdr = reinterpret_cast<const vfio_info_cap_header*>(base + off);
        if (hdr->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
            auto* cap = reinterpret_cast<const vfio_iommu_type1_info_cap_iova_range*>(hdr);
            for (std::uint32_t i = 0; i < cap->nr_iovas; ++i) {
                ranges.emplace_back(cap->iova_ranges[i].start, cap->iova_ranges[i].end);
            }
        }
        off = hdr->next;
    }
    return ranges;
}

} // namespace

std::unique_ptr<Device> Device::open(const std::string& bdf_text, const OpenOptions& options) {
    auto bdf = normalize_bdf(bdf_text);
    if (!bdf) {
        throw Error(ErrorKind::invalid_input, "vfio: '" + bdf_text + "' is not a PCI address");
    }
    std::unique_ptr<Device> d(new Device());
    d->m_identity = read_identity(options.sysfs_root, *bdf);
    const std::string& b = *bdf;
    if (d->m_identity.iommu_group < 0) {
        throw Error(ErrorKind::invalid_input,
                    "vfio " + b + ": no IOMMU group (is the IOMMU on? intel_iommu=on)");
    }
    if (d->m_identity.driver != "vfio-pci") {
        throw Error(ErrorKind::invalid_input,
                    "vfio " + b + ": bound to " +
                        (d->m_identity.driver.empty() ? "no driver" : d->m_identity.driver) +
                        ", not vfio-pci");
    }
    d->m_container = UniqueFd(::open((options.vfio_dir + "/vfio").c_str(), O_RDWR | O_CLOEXEC));
    if (!d->m_container.valid()) {
        fail(b, "open " + options.vfio_dir + "/vfio", errno);
    }
    if (::ioctl(d->m_container.get(), VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
        throw Error(ErrorKind::os, "vfio " + b + ": unknown VFIO API version");
    }
    int iommu = VFIO_TYPE1v2_IOMMU;
    if (::ioctl(d->m_container.get(), VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
        iommu = VFIO_TYPE1_IOMMU;
        if (::ioctl(d->m_container.get(), VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) <= 0) {
            throw Error(ErrorKind::os, "vfio " + b + ": no TYPE1 IOMMU (load vfio_iommu_type1)");
        }
    }
    std::string group_path = options.vfio_dir + "/" + std::to_string(d->m_identity.iommu_group);
    d->m_group = UniqueFd(::open(group_path.c_str(), O_RDWR | O_CLOEXEC));
    if (!d->m_group.valid()) {
        fail(b, "open " + group_path, errno);
    }
    vfio_group_status status{};
    status.argsz = sizeof status;
    if (::ioctl(d->m_group.get(), VFIO_GROUP_GET_STATUS, &status) != 0) {
        fail(b, "VFIO_GROUP_GET_STATUS", errno);
    }
    if ((status.flags & VFIO_GROUP_FLAGS_VIABLE) == 0) {
        throw Error(ErrorKind::invalid_input,
                    "vfio " + b + ": IOMMU group " + std::to_string(d->m_identity.iommu_group) +
                        " is not viable (every member must be bound to vfio-pci or be a " +
                        "bridge): " + group_members(options.sysfs_root, d->m_identity.iommu_group));
    }
    int cfd = d->m_container.get();
    if (::ioctl(d->m_group.get(), VFIO_GROUP_SET_CONTAINER, &cfd) != 0) {
        fail(b, "VFIO_GROUP_SET_CONTAINER", errno);
    }
    if (::ioctl(cfd, VFIO_SET_IOMMU, iommu) != 0) {
        fail(b, "VFIO_SET_IOMMU (type1)", errno);
    }
    d->m_iova.set_usable(usable_iova(cfd));
    int dfd = ::ioctl(d->m_group.get(), VFIO_GROUP_GET_DEVICE_FD, b.c_str());
    if (dfd < 0) {
        fail(b, "VFIO_GROUP_GET_DEVICE_FD", errno);
    }
    d->m_device = UniqueFd(dfd);
    ::fcntl(dfd, F_SETFD, FD_CLOEXEC);

    vfio_device_info info{};
    info.argsz = sizeof info;
    if (::ioctl(dfd, VFIO_DEVICE_GET_INFO, &info) != 0) {
        fail(b, "VFIO_DEVICE_GET_INFO", errno);
    }
    if ((info.flags & VFIO_DEVICE_FLAGS_PCI) == 0) {
        throw Error(ErrorKind::invalid_input, "vfio " + b + ": not a PCI device");
    }
    d->m_reset_flag = (info.flags & VFIO_DEVICE_FLAGS_RESET) != 0;
    for (std::uint32_t i = 0; i < info.num_regions && i <= VFIO_PCI_CONFIG_REGION_INDEX; ++i) {
        vfio_region_info ri{};
        ri.argsz = sizeof ri;
        ri.index = i;
        if (::ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, &ri) != 0) {
            continue; // a region VFIO does not describe (no BAR there)
        }
        Region r;
        r.index = static_cast<int>(i);
        r.size = ri.size;
        r.offset = ri.offset;
        r.readable = (ri.flags & VFIO_REGION_INFO_FLAG_READ) != 0;
        r.writable = (ri.flags & VFIO_REGION_INFO_FLAG_WRITE) != 0;
        r.mappable = (ri.flags & VFIO_REGION_INFO_FLAG_MMAP) != 0;
        if (i == VFIO_PCI_CONFIG_REGION_INDEX) {
            d->m_config = r;
        } else if (i <= VFIO_PCI_BAR5_REGION_INDEX && r.size != 0) {
            d->m_regions.push_back(r);
        }
    }
    d->m_bars = bar_table(d->m_regions);
    if (d->m_config.size == 0) {
        throw Error(ErrorKind::os, "vfio " + b + ": no config space region");
    }
    d->enable_master();
    std::uint32_t counts[3] = {0, 0, 0};
    for (std::uint32_t index : {VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX}) {
        vfio_irq_info irq{};
        irq.argsz = sizeof irq;
        irq.index = index;
        if (index < info.num_irqs && ::ioctl(dfd, VFIO_DEVICE_GET_IRQ_INFO, &irq) == 0 &&
            (irq.flags & VFIO_IRQ_INFO_EVENTFD) != 0) {
            counts[index] = irq.count;
        }
    }
    d->m_irq = choose_irqs(counts[VFIO_PCI_MSI_IRQ_INDEX],
                           std::min(counts[VFIO_PCI_MSIX_IRQ_INDEX], k_max_vectors));
    d->enable_irqs();
    return d;
}

Device::~Device() {
    // Interrupts off, DMA unmapped; the fds close in reverse order (device, group, container).
    if (m_device.valid() && m_irq.count > 0) {
        vfio_irq_set off{};
        off.argsz = sizeof off;
        off.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
        off.index =
            m_irq.type == endpoint::IrqType::msi ? VFIO_PCI_MSI_IRQ_INDEX : VFIO_PCI_MSIX_IRQ_INDEX;
        ::ioctl(m_device.get(), VFIO_DEVICE_SET_IRQS, &off);
    }
    unmap_all();
}

// PCI_COMMAND: memory space and bus master on (VFIO leaves bus mastering to its user; without
// it the device's DMA and MSI writes go nowhere).
void Device::enable_master() {
    std::uint16_t cmd = 0;
    auto off = static_cast<off_t>(m_config.offset + 4);
    if (::pread(m_device.get(), &cmd, sizeof cmd, off) != sizeof cmd) {
        fail(m_identity.bdf, "reading PCI_COMMAND", errno);
    }
    cmd |= 0x2 | 0x4;
    if (::pwrite(m_device.get(), &cmd, sizeof cmd, off) != sizeof cmd) {
        fail(m_identity.bdf, "writing PCI_COMMAND", errno);
    }
}

void Device::enable_irqs() {
    if (m_irq.count == 0) {
        return;
    }
    std::vector<std::int32_t> fds;
    for (std::uint32_t i = 0; i < m_irq.count; ++i) {
        UniqueFd e(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!e.valid()) {
            fail(m_identity.bdf, "eventfd", errno);
        }
        fds.push_back(e.get());
        m_irq_fds.push_back(std::move(e));
    }
    std::vector<std::uint8_t> buf(sizeof(vfio_irq_set) + fds.size() * sizeof(std::int32_t));
    auto* set = reinterpret_cast<vfio_irq_set*>(buf.data());
    set->argsz = static_cast<std::uint32_t>(buf.size());
    set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    set->index =
        m_irq.type == endpoint::IrqType::msi ? VFIO_PCI_MSI_IRQ_INDEX : VFIO_PCI_MSIX_IRQ_INDEX;
    set->start = 0;
    set->count = m_irq.count;
    std::memcpy(set->data, fds.data(), fds.size() * sizeof(std::int32_t));
    if (::ioctl(m_device.get(), VFIO_DEVICE_SET_IRQS, set) != 0) {
        int e = errno;
        m_irq_fds.clear();
        m_irq.count = 0;
        fail(m_identity.bdf,
             std::string("VFIO_DEVICE_SET_IRQS (") + endpoint::to_string(m_irq.type) + ")", e);
    }
}

std::uint64_t Device::bar_size(int bar) const {
    const Region* r = m_bars.bar(bar);
    return r == nullptr ? 0 : r->size;
}

std::uint64_t Device::map_dma(std::shared_ptr<endpoint::Mapping> mapping) {
    if (!mapping || mapping->bytes().empty()) {
        throw Error(ErrorKind::invalid_input, "vfio DMA map: nothing to map");
    }
    auto addr = reinterpret_cast<std::uintptr_t>(mapping->bytes().data());
    std::uint64_t delta = addr % k_page;
    std::uint64_t vaddr = addr - delta;
    std::uint64_t size = (delta + mapping->bytes().size() + k_page - 1) / k_page * k_page;
    std::lock_guard lock(m_mutex);
    auto iova = m_iova.allocate(size);
    if (!iova) {
        throw Error(ErrorKind::busy, "vfio " + m_identity.bdf + ": IO address space is full");
    }
    vfio_iommu_type1_dma_map map{};
    map.argsz = sizeof map;
    map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    map.vaddr = vaddr;
    map.iova = *iova;
    map.size = size;
    if (::ioctl(m_container.get(), VFIO_IOMMU_MAP_DMA, &map) != 0) {
        int e = errno;
        m_iova.release(*iova);
        fail(m_identity.bdf, "VFIO_IOMMU_MAP_DMA of " + std::to_string(size) + " bytes", e);
    }
    std::uint64_t io_addr = *iova + delta;
    m_dma[io_addr] = Dma{*iova, size, std::move(mapping)};
    return io_addr;
}

bool Device::unmap_dma(std::uint64_t io_addr) {
    std::lock_guard lock(m_mutex);
    auto it = m_dma.find(io_addr);
    if (it == m_dma.end()) {
        return false;
    }
    vfio_iommu_type1_dma_unmap unmap{};
    unmap.argsz = sizeof unmap;
    unmap.iova = it->second.iova;
    unmap.size = it->second.size;
    // After this returns the IOMMU no longer translates the range (the pages are unpinned);
    // only then may the memory go.
    ::ioctl(m_container.get(), VFIO_IOMMU_UNMAP_DMA, &unmap);
    m_iova.release(it->second.iova);
    m_dma.erase(it);
    return true;
}

void Device::unmap_all() {
    std::vector<std::uint64_t> addrs;
    {
        std::lock_guard lock(m_mutex);
        for (const auto& [a, _] : m_dma) {
            addrs.push_back(a);
        }
    }
    for (auto a : addrs) {
        unmap_dma(a);
    }
}

std::size_t Device::dma_count() const {
    std::lock_guard lock(m_mutex);
    return m_dma.size();
}

endpoint::ResetResult Device::reset(std::string* why) {
    unmap_all(); // a DMA in flight faults in the IOMMU from here on
    if (!m_reset_flag) {
        if (why != nullptr) {
            *why = "the kernel offers no reset for " + m_identity.bdf +
                   " (VFIO_DEVICE_FLAGS_RESET not set)";
        }
        return endpoint::ResetResult::failed;
    }
    if (::ioctl(m_device.get(), VFIO_DEVICE_RESET) != 0) {
        int e = errno;
        if (why != nullptr) {
            *why = "VFIO_DEVICE_RESET of " + m_identity.bdf + ": " + std::strerror(e);
        }
        return endpoint::ResetResult::failed;
    }
    try {
        enable_master();
    } catch (const Error& e) {
        if (why != nullptr) {
            *why = e.what();
        }
        return endpoint::ResetResult::failed;
    }
    return endpoint::ResetResult::ok;
}

} // namespace dis::vfio
