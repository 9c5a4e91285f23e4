// The device's view of borrower memory: mappings of memory files placed in an IO address space
// with guard gaps, and the one check every transfer goes through (translate).
#include "dis/endpoint.hpp"

#include "dis/error.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace dis::endpoint {
namespace {

std::uint64_t page_size() {
    static const std::uint64_t size = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

} // namespace

std::shared_ptr<Mapping> Mapping::map_fd(int fd, std::uint64_t offset, std::uint64_t size) {
    if (size == 0) {
        throw Error(ErrorKind::invalid_input, "device mapping: size 0");
    }
    int seals = ::fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) {
        throw Error(ErrorKind::invalid_input,
                    "device mapping: memory not sealed against shrinking (F_SEAL_SHRINK)");
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        throw Error(ErrorKind::invalid_input, "device mapping: descriptor is not a memory file");
    }
    auto file_size = static_cast<std::uint64_t>(st.st_size);
    if (offset > file_size || size > file_size - offset) {
        throw Error(ErrorKind::invalid_input, "device mapping: offset " + std::to_string(offset) +
                                                  " + size " + std::to_string(size) +
                                                  " past the memory's " +
                                                  std::to_string(file_size) + " bytes");
    }
    std::uint64_t delta = offset % page_size();
    std::uint64_t length = size + delta;
    void* base = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                        static_cast<off_t>(offset - delta));
    if (base == MAP_FAILED) {
        throw os_error("device mapping: mmap", errno);
    }
    std::shared_ptr<Mapping> m(new Mapping());
    m->m_map_base = base;
    m->m_map_length = length;
    m->m_bytes = std::span<std::byte>(static_cast<std::byte*>(base) + delta, size);
    return m;
}

std::shared_ptr<Mapping> Mapping::external(std::span<std::byte> memory,
                                           std::shared_ptr<void> owner) {
    if (memory.empty()) {
        throw Error(ErrorKind::invalid_input, "device mapping: size 0");
    }
    std::shared_ptr<Mapping> m(new Mapping());
    m->m_bytes = memory;
    m->m_owner = std::move(owner);
    return m;
}

Mapping::~Mapping() {
    if (m_map_base != nullptr) {
        ::munmap(m_map_base, m_map_length);
    }
}

std::uint64_t IoSpace::map(std::shared_ptr<Mapping> mapping) {
    if (!mapping || mapping->bytes().empty()) {
        throw Error(ErrorKind::invalid_input, "IO space: nothing to map");
    }
    // Keep the memory's offset in its page, as an IOMMU mapping does.
    auto in_page = reinterpret_cast<std::uintptr_t>(mapping->bytes().data()) % k_page;
    std::lock_guard lock(m_mutex);
    std::uint64_t addr = m_next + in_page;
    std::uint64_t end = addr + mapping->bytes().size();
    // Next mapping: the page after the one following this mapping's last page (the guard).
    m_next = (end + k_page - 1) / k_page * k_page + k_page;
    m_mappings.emplace(addr, std::move(mapping));
    return addr;
}

bool IoSpace::unmap(std::uint64_t io_addr) {
    std::lock_guard lock(m_mutex);
    return m_mappings.erase(io_addr) > 0;
}

std::optional<IoSpan> IoSpace::translate(std::uint64_t addr, std::uint64_t len) const {
    std::lock_guard lock(m_mutex);
    auto it = m_mappings.upper_bound(addr);
    if (it == m_mappings.begin()) {
        return std::nullopt;
    }
    --it;
    std::uint64_t offset = addr - it->first;
    std::uint64_t size = it->second->bytes().size();
    if (offset >= size || len > size - offset) {
        return std::nullopt;
    }
    return IoSpan{it->second->bytes().subspan(offset, len), it->second};
}

void IoSpace::clear() {
    std::map<std::uint64_t, std::shared_ptr<Mapping>> gone;
    {
        std::lock_guard lock(m_mutex);
        gone.swap(m_mappings);
    }
    // munmap outside the lock
}

std::size_t IoSpace::mapping_count() const {
    std::lock_guard lock(m_mutex);
    return m_mappings.size();
}

} // namespace dis::endpoint
