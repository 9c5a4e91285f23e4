// libFuzzer target: the lspci dump reader (dis::pci::scan over Source::dump: the dump
// validator, then libpci's dump method, then the config-space decoder). The input is
// written to a memfd and read through /proc/self/fd, as a dump file would be. Any input must
// either scan or throw dis::Error(invalid_input); a scanned topology must render.
#include "dis/error.hpp"
#include "dis/output.hpp"
#include "dis/pci.hpp"

#include <nlohmann/json.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "dis/unique_fd.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 256 * 1024)
        return -1;
    dis::UniqueFd fd(::memfd_create("fuzz-dump", MFD_CLOEXEC));
    if (!fd.valid())
        std::abort();
    for (std::size_t done = 0; done < size;) {
        ssize_t n = ::write(fd.get(), data + done, size - done);
        if (n <= 0)
            std::abort();
        done += static_cast<std::size_t>(n);
    }
    std::string path = "/proc/self/fd/" + std::to_string(fd.get());
    std::ostringstream sink; // rendered as the CLI renders them: the one JSON renderer
    try {
        auto topology = dis::pci::scan(dis::pci::Source::dump(path));
        for (const auto& device : topology.devices()) {
            dis::output::render_json(sink, dis::pci::to_json(device));
            (void)topology.upstream_path(device.bdf); // must end: parents form no cycle
        }
        (void)dis::pci::render_tree_text(topology);
        dis::output::render_json(sink, dis::pci::tree_to_json(topology));
    } catch (const dis::Error& e) {
        if (e.kind() != dis::ErrorKind::invalid_input)
            std::abort(); // a readable file is never an OS or not-found error
    }
    return 0;
}
