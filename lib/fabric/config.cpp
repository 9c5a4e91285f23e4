// Parser of the fabric config file. Line based, so that it needs no extra dependency and
// errors can name the line: "keyword positional... key=value...", '#' starts a comment.
#include "dis/fabric_config.hpp"

#include "dis/error.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace dis::fabric {

namespace {

struct Line {
    std::vector<std::string> positional;
    std::map<std::string, std::string> options;
};

Line split_line(const std::string& raw) {
    std::string text = raw.substr(0, raw.find('#'));
    std::istringstream in(text);
    Line line;
    std::string word;
    while (in >> word) {
        auto eq = word.find('=');
        if (eq == std::string::npos) {
            line.positional.push_back(word);
        } else {
            line.options[word.substr(0, eq)] = word.substr(eq + 1);
        }
    }
    return line;
}

std::uint64_t parse_number(const std::string& s, const std::string& where) {
    try {
        std::size_t used = 0;
        unsigned long long v = std::stoull(s, &used, 0);
        if (used == s.size() && !s.empty() && s[0] != '-') {
            return v;
        }
    } catch (const std::exception&) {
    }
    throw Error(ErrorKind::invalid_input, where + ": '" + s + "' is not a number");
}

bool valid_speed(const std::string& s) {
    // lspci spelling: "2.5GT/s", "8GT/s", "16GT/s" ...
    if (s.size() < 5 || s.substr(s.size() - 4) != "GT/s") {
        return false;
    }
    std::string num = s.substr(0, s.size() - 4);
    return std::all_of(num.begin(), num.end(),
                       [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

std::uint32_t parse_width(const std::string& s, const std::string& where) {
    auto w = parse_number(s, where);
    if (w != 1 && w != 2 && w != 4 && w != 8 && w != 16 && w != 32) {
        throw Error(ErrorKind::invalid_input, where + ": link width must be 1, 2, 4, 8, 16 or 32");
    }
    return static_cast<std::uint32_t>(w);
}

std::string parse_speed(const std::string& s, const std::string& where) {
    if (!valid_speed(s)) {
        throw Error(ErrorKind::invalid_input,
                    where + ": link speed '" + s + "' is not like \"8GT/s\"");
    }
    return s;
}

std::uint32_t parse_node_id(const std::string& s, const std::string& where) {
    auto id = parse_number(s, where);
    if (!valid_node_id(id)) {
        throw Error(ErrorKind::invalid_input,
                    where + ": node id " + s + " is not a positive multiple of 4");
    }
    return static_cast<std::uint32_t>(id);
}

void reject_unknown(const Line& line, std::initializer_list<const char*> known,
                    const std::string& where) {
    for (const auto& option : line.options) {
        const std::string& key = option.first; // clang 14 cannot capture a structured binding
        if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; })) {
            throw Error(ErrorKind::invalid_input, where + ": unknown option '" + key + "'");
        }
    }
}

// The text of a `device` line after its NODE word (comment and outer blanks dropped), or ""
// when there is none. Blanks are the ones split_line's stream extraction skips.
std::string device_spec_text(const std::string& raw) {
    static const char* const blanks = " \t\n\v\f\r";
    std::string text = raw.substr(0, raw.find('#'));
    std::size_t pos = 0;
    for (int word = 0; word < 2 && pos != std::string::npos; ++word) { // "device", NODE
        pos = text.find_first_not_of(blanks, pos);
        pos = pos == std::string::npos ? pos : text.find_first_of(blanks, pos);
    }
    std::size_t begin = pos == std::string::npos ? pos : text.find_first_not_of(blanks, pos);
    if (begin == std::string::npos) {
        return std::string();
    }
    std::size_t end = text.find_last_not_of(blanks);
    return text.substr(begin, end - begin + 1);
}

} // namespace

bool valid_node_id(std::uint64_t id) {
    return id > 0 && id % 4 == 0 && id <= 0xFFFFFFF0ULL;
}

const ConfigNode* FabricConfig::node(std::uint32_t id) const {
    auto it = nodes.find(id);
    return it == nodes.end() ? nullptr : &it->second;
}

std::vector<ConfigLink> FabricConfig::links_of(std::uint32_t node_id,
                                               const std::vector<std::uint32_t>& peers) const {
    std::vector<ConfigLink> out;
    if (!links.empty()) {
        for (const auto& l : links) {
            if (l.a == node_id || l.b == node_id) {
                ConfigLink mine = l;
                if (mine.b == node_id) {
                    std::swap(mine.a, mine.b);
                }
                out.push_back(mine);
            }
        }
        return out;
    }
    for (auto peer : peers) {
        if (peer != node_id) {
            out.push_back(ConfigLink{node_id, peer, default_width, default_speed, true});
        }
    }
    return out;
}

FabricConfig parse_fabric_config(const std::string& text, const std::string& origin) {
    FabricConfig cfg;
    std::istringstream in(text);
    std::string raw;
    int number = 0;
    while (std::getline(in, raw)) {
        ++number;
        std::string where = origin + ":" + std::to_string(number);
        Line line = split_line(raw);
        if (line.positional.empty()) {
            if (!line.options.empty()) {
                throw Error(ErrorKind::invalid_input, where + ": option without a keyword");
            }
            continue;
        }
        const std::string& kw = line.positional[0];
        if (kw == "topology") {
            if (line.positional.size() != 2 || !line.options.empty()) {
                throw Error(ErrorKind::invalid_input, where + ": expected 'topology NAME'");
            }
            cfg.topology = line.positional[1];
        } else if (kw == "default") {
            reject_unknown(line, {"width", "speed"}, where);
            if (line.positional.size() != 1) {
                throw Error(ErrorKind::invalid_input, where + ": expected 'default key=value...'");
            }
            if (line.options.count("width")) {
                cfg.default_width = parse_width(line.options["width"], where);
            }
            if (line.options.count("speed")) {
                cfg.default_speed = parse_speed(line.options["speed"], where);
            }
        } else if (kw == "node") {
            reject_unknown(line, {"name", "adapters", "card", "serial"}, where);
            if (line.positional.size() != 2) {
                throw Error(ErrorKind::invalid_input, where + ": expected 'node ID key=value...'");
            }
            ConfigNode n;
            n.node_id = parse_node_id(line.positional[1], where);
            if (cfg.nodes.count(n.node_id)) {
                throw Error(ErrorKind::invalid_input,
                            where + ": node " + line.positional[1] + " defined twice");
            }
            if (line.options.count("name")) {
                n.name = line.options["name"];
            }
            if (line.options.count("card")) {
                n.card_type = line.options["card"];
            }
            if (line.options.count("serial")) {
                n.serial = parse_number(line.options["serial"], where);
                // SCIQuery reports the serial as an unsigned int.
                if (n.serial > 0xffffffffULL) {
                    throw Error(ErrorKind::invalid_input, where + ": serial must fit 32 bits");
                }
            }
            if (line.options.count("adapters")) {
                auto a = parse_number(line.options["adapters"], where);
                if (a < 1 || a > 4) {
                    throw Error(ErrorKind::invalid_input, where + ": adapters must be 1 to 4");
                }
                n.adapters = static_cast<std::uint32_t>(a);
            }
            cfg.nodes[n.node_id] = n;
        } else if (kw == "link") {
            reject_unknown(line, {"width", "speed", "state"}, where);
            if (line.positional.size() != 3) {
                throw Error(ErrorKind::invalid_input, where + ": expected 'link A B key=value...'");
            }
            ConfigLink l;
            l.a = parse_node_id(line.positional[1], where);
            l.b = parse_node_id(line.positional[2], where);
            if (l.a == l.b) {
                throw Error(ErrorKind::invalid_input, where + ": a link needs two different nodes");
            }
            l.width = cfg.default_width;
            l.speed = cfg.default_speed;
            if (line.options.count("width")) {
                l.width = parse_width(line.options["width"], where);
            }
            if (line.options.count("speed")) {
                l.speed = parse_speed(line.options["speed"], where);
            }
            if (line.options.count("state")) {
                const auto& s = line.options["state"];
                if (s != "up" && s != "down") {
                    throw Error(ErrorKind::invalid_input, where + ": state must be up or down");
                }
                l.up = s == "up";
            }
            cfg.links.push_back(l);
        } else if (kw == "device") {
            // The spec itself is parsed by disd (dis::endpoint::parse_device_spec); here only
            // its node and kind, so that a typo names its line.
            // A real function is one word, "vfio:BDF[,name=NAME]" (its '=' would make it a
            // key=value word here).
            bool vfio = line.positional.size() >= 2 && device_spec_text(raw).rfind("vfio:", 0) == 0;
            if (line.positional.size() < (vfio ? 2u : 3u)) {
                throw Error(ErrorKind::invalid_input,
                            where + ": expected 'device NODE KIND key=value...' or 'device NODE "
                                    "vfio:BDF[,name=NAME]'");
            }
            std::uint32_t node = parse_node_id(line.positional[1], where);
            std::string kind = vfio ? std::string() : line.positional[2];
            if (!vfio && kind != "epf-test" && kind != "memory") {
                throw Error(ErrorKind::invalid_input,
                            where + ": unknown device kind '" + kind +
                                "' (epf-test, memory, or vfio:BDF[,name=NAME])");
            }
            cfg.devices[node].push_back(device_spec_text(raw));
        } else {
            throw Error(ErrorKind::invalid_input, where + ": unknown keyword '" + kw + "'");
        }
    }
    for (const auto& [node, specs] : cfg.devices) {
        if (!cfg.nodes.empty() && !cfg.nodes.count(node)) {
            throw Error(ErrorKind::invalid_input, origin + ": devices of node " +
                                                      std::to_string(node) +
                                                      ", which is not declared");
        }
    }
    for (const auto& l : cfg.links) {
        if (!cfg.nodes.empty() && (!cfg.nodes.count(l.a) || !cfg.nodes.count(l.b))) {
            throw Error(ErrorKind::invalid_input, origin + ": link " + std::to_string(l.a) + "-" +
                                                      std::to_string(l.b) +
                                                      " names a node that is not declared");
        }
    }
    return cfg;
}

FabricConfig load_fabric_config(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        throw Error(ErrorKind::not_found, "cannot read fabric config " + path);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_fabric_config(ss.str(), path);
}

} // namespace dis::fabric
