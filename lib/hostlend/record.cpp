// The record of a lent device's original binding: <state dir>/<BDF>.json, written atomically
// (dis/hostlend.hpp).
#include "dis/error.hpp"
#include "dis/hostlend.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace dis::hostlend {

namespace fs = std::filesystem;

namespace {

nlohmann::json opt_str(const std::optional<std::string>& s) {
    return s ? nlohmann::json(*s) : nlohmann::json();
}

std::optional<std::string> str_or_null(const nlohmann::json& j, const char* key) {
    const auto& v = j.at(key);
    if (v.is_null())
        return std::nullopt;
    return v.get<std::string>();
}

} // namespace

nlohmann::json to_json(const Record& r) {
    return {{"bdf", r.bdf.to_string()},
            {"original",
             {{"driver", opt_str(r.original.driver)},
              {"driver_override", opt_str(r.original.driver_override)}}},
            {"reset_methods", r.reset_methods},
            {"name", r.name},
            {"node_id", r.node_id},
            {"fabric_dir", r.fabric_dir},
            {"fdid", r.fdid ? nlohmann::json(*r.fdid) : nlohmann::json()},
            {"lent_ms", r.lent_ms}};
}

Record record_from_json(const nlohmann::json& j) {
    try {
        Record r;
        r.bdf = pci::Bdf::parse(j.at("bdf").get<std::string>());
        r.original.driver = str_or_null(j.at("original"), "driver");
        r.original.driver_override = str_or_null(j.at("original"), "driver_override");
        r.reset_methods = j.at("reset_methods").get<std::vector<std::string>>();
        r.name = j.at("name").get<std::string>();
        r.node_id = j.at("node_id").get<std::uint32_t>();
        r.fabric_dir = j.at("fabric_dir").get<std::string>();
        if (!j.at("fdid").is_null())
            r.fdid = j.at("fdid").get<std::uint32_t>();
        r.lent_ms = j.at("lent_ms").get<std::int64_t>();
        return r;
    } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorKind::invalid_input, std::string("malformed lend record: ") + e.what());
    }
}

std::string default_state_dir() {
    if (::geteuid() == 0)
        return "/run/dis/hostlend";
    if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0')
        return std::string(x) + "/dis/hostlend";
    return "/tmp/dis-" + std::to_string(::geteuid()) + "/hostlend";
}

std::string record_path(const std::string& state_dir, const pci::Bdf& bdf) {
    return (fs::path(state_dir) / (bdf.to_string() + ".json")).string();
}

void save_record(const std::string& state_dir, const Record& record) {
    std::error_code ec;
    fs::create_directories(state_dir, ec);
    if (ec)
        throw Error(ErrorKind::os, "cannot create " + state_dir + ": " + ec.message());
    ::chmod(state_dir.c_str(), 0700);
    const std::string path = record_path(state_dir, record.bdf);
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const std::string text = to_json(record).dump(2) + "\n";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        throw os_error("create " + tmp, errno);
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
              ::fsync(fd) == 0;
    int err = errno;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
        if (ok)
            err = errno;
        ::unlink(tmp.c_str());
        throw os_error("write " + path, err);
    }
    // The rename itself survives a crash once the directory is synced.
    int dfd = ::open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

std::optional<Record> load_record(const std::string& state_dir, const pci::Bdf& bdf) {
    const std::string path = record_path(state_dir, bdf);
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT || !fs::exists(path))
            return std::nullopt;
        throw os_error("read " + path, errno);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    auto j = nlohmann::json::parse(ss.str(), nullptr, false);
    if (j.is_discarded())
        throw Error(ErrorKind::invalid_input, path + " is not JSON");
    Record r = record_from_json(j);
    if (r.bdf != bdf)
        throw Error(ErrorKind::invalid_input, path + " records " + r.bdf.to_string());
    return r;
}

void remove_record(const std::string& state_dir, const pci::Bdf& bdf) {
    const std::string path = record_path(state_dir, bdf);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        throw os_error("remove " + path, errno);
}

} // namespace dis::hostlend
