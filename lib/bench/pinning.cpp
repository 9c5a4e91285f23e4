// Where the two sides of a benchmark run. A ping-pong whose two spinning sides share a CPU
// measures the scheduler, not the path: on the software fabric both sides get CPUs of their
// own unless the user says otherwise.
#include "dis/bench.hpp"

#include <sched.h>

#include <algorithm>

namespace dis::bench {

Pinning plan_pinning(int cpu, int remote_cpu, bool no_pin, const std::vector<int>& allowed) {
    Pinning p;
    p.local_cpu = cpu;
    p.remote_cpu = remote_cpu;
    if (no_pin || (cpu >= 0 && remote_cpu >= 0))
        return p;
    auto other_than = [&](int taken) {
        for (int c : allowed)
            if (c != taken)
                return c;
        return -1;
    };
    if (allowed.size() < 2 || (cpu >= 0 && other_than(cpu) < 0) ||
        (remote_cpu >= 0 && other_than(remote_cpu) < 0)) {
        p.warning = "this process may run on " + std::to_string(allowed.size()) +
                    " CPU(s) only: the two sides share a CPU, and a latency between spinning "
                    "sides then measures the scheduler";
        return p;
    }
    p.by_default = true;
    if (p.local_cpu < 0)
        p.local_cpu = other_than(p.remote_cpu);
    if (p.remote_cpu < 0)
        p.remote_cpu = other_than(p.local_cpu);
    return p;
}

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set))
            cpus.push_back(c);
    return cpus;
}

} // namespace dis::bench
