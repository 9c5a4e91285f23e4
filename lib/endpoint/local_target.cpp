// An in-process pcitest target: the BARs are the device's own memory, host buffers are sealed
// memfds mapped into the device's IO space, and wait_irq() polls the device inline.
#include "dis/endpoint_pcitest.hpp"

#include "dis/error.hpp"
#include "dis/unique_fd.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

namespace dis::endpoint {

LocalTarget::LocalTarget(Device& device) : m_device(device) {}

LocalTarget::~LocalTarget() {
    for (auto& [handle, buffer] : m_buffers) {
        m_device.io().unmap(buffer.first);
    }
}

std::uint64_t LocalTarget::bar_size(int bar) {
    return m_device.bar_size(bar);
}

volatile void* LocalTarget::bar(int bar) {
    auto memory = m_device.bar_memory(bar);
    return memory.empty() ? nullptr : memory.data();
}

HostBuffer LocalTarget::alloc_buffer(std::size_t size) {
    std::size_t length =
        (std::max<std::size_t>(size, 1) + IoSpace::k_page - 1) / IoSpace::k_page * IoSpace::k_page;
    UniqueFd fd(::memfd_create("dis-pcitest-buffer", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd.valid()) {
        throw os_error("memfd_create for a test buffer", errno);
    }
    if (::ftruncate(fd.get(), static_cast<off_t>(length)) != 0 ||
        ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
        throw os_error("sizing a test buffer", errno);
    }
    auto mapping = Mapping::map_fd(fd.get(), 0, length);
    std::uint64_t io_addr = m_device.io().map(mapping);
    std::uint64_t handle = m_next_handle++;
    HostBuffer buffer{mapping->bytes().data(), io_addr, length, handle};
    m_buffers.emplace(handle, std::pair{io_addr, std::move(mapping)});
    return buffer;
}

void LocalTarget::free_buffer(const HostBuffer& buffer) {
    auto it = m_buffers.find(buffer.handle);
    if (it == m_buffers.end()) {
        return;
    }
    m_device.io().unmap(it->second.first);
    m_buffers.erase(it);
}

std::optional<Interrupt> LocalTarget::wait_irq(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (!m_irqs.empty()) {
            Interrupt irq = m_irqs.front();
            m_irqs.pop_front();
            return irq;
        }
        bool worked = m_device.poll([this](int type, int number) {
            m_irqs.push_back({static_cast<IrqType>(type), static_cast<std::uint32_t>(number)});
        });
        if (!m_irqs.empty()) {
            continue;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return std::nullopt;
        }
        if (!worked) {
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
    }
}

} // namespace dis::endpoint
