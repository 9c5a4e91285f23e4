// IO virtual addresses for device DMA through VFIO: next-fit over a window, guard pages after
// each range, the IOMMU's usable ranges respected.
#include "dis/vfio.hpp"

#include "dis/error.hpp"

#include <algorithm>

namespace dis::vfio {
namespace {

constexpr std::uint64_t k_page = IovaAllocator::k_page;

std::uint64_t round_up(std::uint64_t v) {
    return (v + k_page - 1) / k_page * k_page;
}

} // namespace

IovaAllocator::IovaAllocator(std::uint64_t base, std::uint64_t limit)
    : m_base(round_up(base)), m_limit(limit / k_page * k_page), m_cursor(m_base) {
    if (m_limit <= m_base) {
        throw Error(ErrorKind::invalid_input, "IOVA window: limit not above base");
    }
}

void IovaAllocator::set_usable(std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges) {
    std::sort(ranges.begin(), ranges.end());
    m_usable = std::move(ranges);
}

// The first start at or after `from` where `size` bytes fit: inside one usable range, clear of
// every allocation by a guard page on both sides.
std::optional<std::uint64_t> IovaAllocator::fit(std::uint64_t from, std::uint64_t size) const {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> windows; // [start, end)
    if (m_usable.empty()) {
        windows.emplace_back(m_base, m_limit);
    } else {
        for (auto [s, e] : m_usable) {
            std::uint64_t start = std::max(round_up(s), m_base);
            // e is inclusive; the last whole page that ends at or before e + 1.
            std::uint64_t end =
                e == UINT64_MAX ? m_limit : std::min((e + 1) / k_page * k_page, m_limit);
            if (start < end) {
                windows.emplace_back(start, end);
            }
        }
    }
    for (auto [ws, we] : windows) {
        std::uint64_t cand = std::max(ws, from);
        while (cand < we && we - cand >= size) {
            // The allocation at or before cand, and the next one after it.
            auto next = m_used.lower_bound(cand);
            if (next != m_used.begin()) {
                auto prev = std::prev(next);
                std::uint64_t prev_end = prev->first + prev->second + k_page; // its guard
                if (prev_end > cand) {
                    cand = prev_end;
                    continue;
                }
            }
            if (next != m_used.end() && cand + size + k_page > next->first) {
                cand = next->first + next->second + k_page;
                continue;
            }
            if (cand + size > we) {
                break;
            }
            return cand;
        }
    }
    return std::nullopt;
}

std::optional<std::uint64_t> IovaAllocator::allocate(std::uint64_t size) {
    if (size == 0) {
        return std::nullopt;
    }
    size = round_up(size);
    auto at = fit(m_cursor, size);
    if (!at) {
        at = fit(m_base, size); // the window is used up to its end: wrap around
    }
    if (!at) {
        return std::nullopt;
    }
    m_used.emplace(*at, size);
    m_cursor = *at + size + k_page;
    return at;
}

bool IovaAllocator::release(std::uint64_t iova) {
    return m_used.erase(iova) > 0;
}

void IovaAllocator::clear() {
    m_used.clear();
}

std::optional<std::pair<std::uint64_t, std::uint64_t>>
IovaAllocator::find(std::uint64_t addr, std::uint64_t len) const {
    auto it = m_used.upper_bound(addr);
    if (it == m_used.begin()) {
        return std::nullopt;
    }
    --it;
    std::uint64_t off = addr - it->first;
    if (off >= it->second || len > it->second - off) {
        return std::nullopt;
    }
    return *it;
}

} // namespace dis::vfio
