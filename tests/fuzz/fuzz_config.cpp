// libFuzzer target: the fabric config parser (dis::fabric::parse_fabric_config). Any input
// must either parse or throw dis::Error(invalid_input); a parsed config must answer links_of.
#include "dis/error.hpp"
#include "dis/fabric_config.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        auto config = dis::fabric::parse_fabric_config(text, "fuzz");
        std::vector<std::uint32_t> peers;
        for (const auto& [id, node] : config.nodes)
            peers.push_back(id);
        if (peers.empty())
            peers = {4, 8, 12};
        for (auto id : peers) {
            (void)config.node(id);
            for (const auto& link : config.links_of(id, peers))
                if (link.a != id && link.b != id)
                    std::abort(); // a link of `id` that does not touch it
        }
    } catch (const dis::Error& e) {
        if (e.kind() != dis::ErrorKind::invalid_input)
            std::abort(); // parsing text is never an OS or internal error
    }
    return 0;
}
