// The pause hint of the daemon's spinning engines (DMA and device): it lets the sibling
// hyperthread run and saves power while a queue is polled.
#pragma once

namespace dis::disd {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

} // namespace dis::disd
