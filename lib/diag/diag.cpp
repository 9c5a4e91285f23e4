// dis::diag::run and the report's one schema (dis/diag.hpp, dis-tool-diag(1)).
#include "dis/diag.hpp"

#include "dis/error.hpp"
#include "dis/unique_fd.hpp"

#include "checks.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace dis::diag {

namespace fs = std::filesystem;

const char* to_string(Verdict verdict) noexcept {
    switch (verdict) {
    case Verdict::pass:
        return "pass";
    case Verdict::warn:
        return "warn";
    case Verdict::fail:
        return "fail";
    }
    return "fail";
}

Summary Report::summary() const {
    Summary s;
    for (const auto& c : checks) {
        ++s.checks;
        if (c.verdict == Verdict::pass)
            ++s.passed;
        else if (c.verdict == Verdict::warn)
            ++s.warnings;
        else
            ++s.failed;
    }
    return s;
}

int exit_code(const Report& report, bool strict) {
    if (report.fabric_unreachable)
        return k_exit_fabric;
    auto s = report.summary();
    if (s.failed > 0 || (strict && s.warnings > 0))
        return k_exit_check_failed;
    return k_exit_ok;
}

std::string summary_line(const Report& report) {
    auto s = report.summary();
    return std::to_string(s.checks) + " checks: " + std::to_string(s.passed) + " passed, " +
           std::to_string(s.warnings) + (s.warnings == 1 ? " warning, " : " warnings, ") +
           std::to_string(s.failed) + " failed";
}

nlohmann::json to_json(const Check& check) {
    return {{"group", check.group},
            {"name", check.name},
            {"verdict", to_string(check.verdict)},
            {"reason", check.reason},
            {"counters", check.counters.is_null() ? nlohmann::json::object() : check.counters}};
}

nlohmann::json to_json(const Report& report) {
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& c : report.checks)
        checks.push_back(to_json(c));
    auto s = report.summary();
    return {{"fabric_dir", report.fabric_dir},
            {"fabric_unreachable", report.fabric_unreachable},
            {"checks", checks},
            {"summary",
             {{"checks", s.checks},
              {"passed", s.passed},
              {"warnings", s.warnings},
              {"failed", s.failed}}}};
}

std::string default_baseline_file() {
    const char* state = std::getenv("XDG_STATE_HOME");
    if (state != nullptr && state[0] == '/')
        return (fs::path(state) / "dis" / "diag-baseline.json").string();
    const char* home = std::getenv("HOME");
    if (home == nullptr || home[0] != '/')
        throw Error(ErrorKind::invalid_input,
                    "no baseline file: set $XDG_STATE_HOME or $HOME, or give --state FILE");
    return (fs::path(home) / ".local" / "state" / "dis" / "diag-baseline.json").string();
}

void save_baseline(const Report& report, const std::string& path) {
    fs::path p(path);
    std::error_code ec;
    if (p.has_parent_path()) {
        fs::create_directories(p.parent_path(), ec);
        if (ec)
            throw Error(ErrorKind::os,
                        "creating " + p.parent_path().string() + ": " + ec.message());
    }
    nlohmann::json doc = {{"version", 1}, {"counters", report.baseline}};
    std::string text = doc.dump(2) + "\n";
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        UniqueFd fd(
            ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fd.valid())
            throw os_error("creating " + tmp, errno);
        std::size_t done = 0;
        while (done < text.size()) {
            ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                int err = errno;
                ::unlink(tmp.c_str());
                throw os_error("writing " + tmp, err);
            }
            done += static_cast<std::size_t>(n);
        }
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw os_error("renaming " + tmp + " to " + path, err);
    }
}

namespace detail {

std::uint64_t Baseline::fresh(const std::string& key, std::uint64_t value) const {
    auto it = counters.find(key);
    if (it == counters.end() || !it->is_number_unsigned())
        return value;
    auto old = it->get<std::uint64_t>();
    return value >= old ? value - old : value;
}

Baseline load_baseline(const std::optional<std::string>& path) {
    Baseline b;
    if (!path)
        return b;
    std::ifstream in(*path);
    if (!in)
        return b; // no --clear yet
    std::stringstream text;
    text << in.rdbuf();
    try {
        auto doc = nlohmann::json::parse(text.str());
        if (!doc.is_object() || !doc.contains("counters") || !doc["counters"].is_object())
            throw Error(ErrorKind::invalid_input, "");
        b.counters = doc["counters"];
    } catch (const std::exception&) {
        throw Error(ErrorKind::invalid_input,
                    "malformed diag baseline " + *path + " (remove it or run diag --clear)");
    }
    return b;
}

Check make_check(std::string group, std::string name, Verdict verdict, std::string reason,
                 nlohmann::json counters) {
    Check c;
    c.group = std::move(group);
    c.name = std::move(name);
    c.verdict = verdict;
    c.reason = std::move(reason);
    c.counters = counters.is_null() ? nlohmann::json::object() : std::move(counters);
    return c;
}

} // namespace detail

Report run(const Options& options) {
    using namespace detail;
    Report report;
    report.fabric_dir = options.fabric_dir;
    Baseline baseline = load_baseline(options.baseline_file);

    check_versions(options, report.checks);
    FabricView view = read_fabric(options);
    report.fabric_unreachable = !view.topology.has_value();
    check_nodes(options, view, report.checks);
    if (view.topology) {
        check_adapters(view, report.checks);
        check_links(view, report.checks);
        check_loopback(options, view, report.checks);
    }
    check_pcie(options, baseline, report.baseline, report.checks);
    if (view.topology)
        check_pool(options, baseline, report.baseline, report.checks);
    check_iommu(options, report.checks);
    return report;
}

} // namespace dis::diag
