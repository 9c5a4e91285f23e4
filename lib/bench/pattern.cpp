// Payload patterns and checksums shared by both sides of every test.
#include "dis/bench.hpp"

#include <cstring>

namespace dis::bench {

namespace {

// splitmix64: a cheap, well-mixed sequence; any change of seed or position changes the word.
std::uint64_t mix(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

} // namespace

void fill_pattern(void* dst, std::size_t size, std::uint64_t seed) {
    auto* out = static_cast<unsigned char*>(dst);
    const std::uint64_t base = mix(seed);
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        std::uint64_t w = mix(base + i);
        std::memcpy(out + i, &w, 8);
    }
    if (i < size) {
        std::uint64_t w = mix(base + i);
        std::memcpy(out + i, &w, size - i);
    }
}

std::uint64_t checksum(const void* data, std::size_t size) {
    const auto* in = static_cast<const unsigned char*>(data);
    // Four independent lanes keep the multiply chains short; folding in the length and the
    // lane order makes moved or truncated data change the sum.
    std::uint64_t lane[4] = {0x243F6A8885A308D3ull, 0x13198A2E03707344ull, 0xA4093822299F31D0ull,
                             0x082EFA98EC4E6C89ull};
    constexpr std::uint64_t k_prime = 0x100000001B3ull;
    std::size_t i = 0;
    for (; i + 32 <= size; i += 32) {
        for (int l = 0; l < 4; ++l) {
            std::uint64_t w;
            std::memcpy(&w, in + i + 8 * l, 8);
            lane[l] = (lane[l] ^ w) * k_prime;
            lane[l] ^= lane[l] >> 29;
        }
    }
    for (; i < size; ++i)
        lane[i % 4] = (lane[i % 4] ^ in[i]) * k_prime;
    std::uint64_t h = size;
    for (auto l : lane)
        h = mix(h ^ l);
    return h;
}

} // namespace dis::bench
