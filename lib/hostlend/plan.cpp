// Lend, unlend and vfs plans as ordered sysfs writes, and their execution with rollback
// (dis/hostlend.hpp).
#include "dis/error.hpp"
#include "dis/hostlend.hpp"

#include "read_trimmed.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace dis::hostlend {

namespace fs = std::filesystem;

namespace {

std::string dev_dir(const pci::Bdf& bdf) {
    return "bus/pci/devices/" + bdf.to_string();
}

using detail::read_trimmed;

Step write_step(std::string path, std::string value, std::string what) {
    return {Step::Kind::write, std::move(path), std::move(value), std::move(what)};
}

Step verify_driver_step(const pci::Bdf& bdf, const std::optional<std::string>& driver) {
    return {Step::Kind::verify_driver, dev_dir(bdf) + "/driver", driver.value_or(""),
            driver ? "verify: bound to " + *driver : "verify: no driver bound"};
}

// Writing a newline clears driver_override (drivers/pci/pci-sysfs.c driver_override_store).
Step override_step(const pci::Bdf& bdf, const std::optional<std::string>& value) {
    return write_step(dev_dir(bdf) + "/driver_override", value ? *value : "\n",
                      value ? "driver_override = " + *value : "clear driver_override");
}

std::string binding_text_driver(const std::optional<std::string>& d) {
    return d ? "driver " + *d : "no driver";
}

} // namespace

std::string to_string(const Binding& b) {
    return binding_text_driver(b.driver) + ", " +
           (b.driver_override ? "driver_override " + *b.driver_override : "no driver_override");
}

Binding read_binding(const std::string& sysfs_root, const pci::Bdf& bdf) {
    fs::path dir = fs::path(sysfs_root) / dev_dir(bdf);
    std::error_code ec;
    if (!fs::exists(dir, ec))
        throw Error(ErrorKind::not_found, "no device " + bdf.to_string() + " in " + sysfs_root);
    Binding b;
    auto link = fs::read_symlink(dir / "driver", ec);
    if (!ec)
        b.driver = link.filename().string();
    std::string ov = read_trimmed(dir / "driver_override");
    if (!ov.empty() && ov != "(null)")
        b.driver_override = ov;
    return b;
}

std::string describe(const Step& step, const std::string& sysfs_root) {
    const std::string path = (fs::path(sysfs_root) / step.path).string();
    switch (step.kind) {
    case Step::Kind::write: {
        std::string v = step.value == "\n" ? "" : step.value;
        return "echo '" + v + "' > " + path;
    }
    case Step::Kind::verify_driver:
        return step.value.empty() ? "check that " + path + " is absent"
                                  : "check that " + path + " links to " + step.value;
    case Step::Kind::verify_numvfs:
        return "check that " + path + " reads " + step.value;
    }
    return step.what;
}

Plan lend_plan(const std::string& sysfs_root, const pci::Bdf& bdf) {
    Plan p;
    p.action = "lend";
    p.bdf = bdf;
    p.original = read_binding(sysfs_root, bdf);
    if (p.original.driver == std::string(k_vfio_driver))
        throw Error(ErrorKind::invalid_input,
                    bdf.to_string() + " is bound to vfio-pci already (lent, or assigned to a VM)");
    p.target = {std::string(k_vfio_driver), std::string(k_vfio_driver)};
    std::istringstream rm(read_trimmed(fs::path(sysfs_root) / dev_dir(bdf) / "reset_method"));
    for (std::string m; rm >> m;)
        p.reset_methods.push_back(m);
    p.steps.push_back(override_step(bdf, std::string(k_vfio_driver)));
    if (p.original.driver)
        p.steps.push_back(write_step(dev_dir(bdf) + "/driver/unbind", bdf.to_string(),
                                     "unbind from " + *p.original.driver));
    p.steps.push_back(write_step("bus/pci/drivers_probe", bdf.to_string(), "drivers_probe"));
    p.steps.push_back(verify_driver_step(bdf, std::string(k_vfio_driver)));
    if (!p.reset_methods.empty()) {
        std::string methods;
        for (const auto& m : p.reset_methods)
            methods += (methods.empty() ? "" : " ") + m;
        p.steps.push_back(
            write_step(dev_dir(bdf) + "/reset", "1", "reset (reset_method: " + methods + ")"));
    }
    return p;
}

std::vector<Step> restore_steps(const std::string& sysfs_root, const pci::Bdf& bdf,
                                const Binding& to) {
    Binding now = read_binding(sysfs_root, bdf);
    std::vector<Step> steps;
    if (now.driver_override != to.driver_override)
        steps.push_back(override_step(bdf, to.driver_override));
    if (now.driver != to.driver) {
        if (now.driver)
            steps.push_back(write_step(dev_dir(bdf) + "/driver/unbind", bdf.to_string(),
                                       "unbind from " + *now.driver));
        if (to.driver)
            steps.push_back(write_step("bus/pci/drivers/" + *to.driver + "/bind", bdf.to_string(),
                                       "bind to " + *to.driver));
    }
    steps.push_back(verify_driver_step(bdf, to.driver));
    return steps;
}

Plan unlend_plan(const std::string& sysfs_root, const pci::Bdf& bdf, const Binding& recorded) {
    Plan p;
    p.action = "unlend";
    p.bdf = bdf;
    p.original = read_binding(sysfs_root, bdf);
    p.target = recorded;
    p.steps = restore_steps(sysfs_root, bdf, recorded);
    return p;
}

Plan vfs_plan(const std::string& sysfs_root, const pci::Bdf& bdf, int count) {
    fs::path dir = fs::path(sysfs_root) / dev_dir(bdf);
    Plan p;
    p.action = "vfs";
    p.bdf = bdf;
    p.original = read_binding(sysfs_root, bdf);
    p.target = p.original;
    std::string total = read_trimmed(dir / "sriov_totalvfs");
    std::string num = read_trimmed(dir / "sriov_numvfs");
    if (total.empty() || num.empty())
        throw Error(ErrorKind::invalid_input,
                    bdf.to_string() + " has no SR-IOV (no sriov_totalvfs in sysfs)");
    int max = 0;
    try {
        max = std::stoi(total);
        p.original_vfs = std::stoi(num);
    } catch (const std::exception&) {
        throw Error(ErrorKind::invalid_input, "unreadable SR-IOV counts of " + bdf.to_string());
    }
    if (count < 0 || count > max)
        throw Error(ErrorKind::invalid_input, "--count " + std::to_string(count) + " for " +
                                                  bdf.to_string() + ": it offers 0 to " +
                                                  std::to_string(max) + " VFs");
    p.target_vfs = count;
    const std::string path = dev_dir(bdf) + "/sriov_numvfs";
    if (count != p.original_vfs) {
        // The kernel refuses one nonzero count over another (EBUSY): disable first.
        if (p.original_vfs != 0)
            p.steps.push_back(write_step(path, "0", "disable the VFs"));
        if (count != 0)
            p.steps.push_back(write_step(path, std::to_string(count),
                                         "enable " + std::to_string(count) + " VFs"));
    }
    p.steps.push_back({Step::Kind::verify_numvfs, path, std::to_string(count),
                       "verify: " + std::to_string(count) + " VFs"});
    return p;
}

nlohmann::json to_json(const Plan& plan, const std::string& sysfs_root) {
    auto binding = [](const Binding& b) {
        return nlohmann::json{{"driver", b.driver ? nlohmann::json(*b.driver) : nlohmann::json()},
                              {"driver_override", b.driver_override
                                                      ? nlohmann::json(*b.driver_override)
                                                      : nlohmann::json()}};
    };
    nlohmann::json steps = nlohmann::json::array();
    for (std::size_t i = 0; i < plan.steps.size(); ++i) {
        const Step& s = plan.steps[i];
        steps.push_back({{"number", i + 1},
                         {"kind", s.kind == Step::Kind::write ? "write" : "verify"},
                         {"path", (fs::path(sysfs_root) / s.path).string()},
                         {"value", s.value == "\n" ? "" : s.value},
                         {"what", s.what},
                         {"command", describe(s, sysfs_root)}});
    }
    nlohmann::json j{{"action", plan.action},
                     {"bdf", plan.bdf.to_string()},
                     {"original", binding(plan.original)},
                     {"target", binding(plan.target)},
                     {"steps", std::move(steps)}};
    if (plan.action == "lend")
        j["reset_methods"] = plan.reset_methods;
    if (plan.action == "vfs") {
        j["original_vfs"] = plan.original_vfs;
        j["target_vfs"] = plan.target_vfs;
    }
    return j;
}

// ---- the real kernel

void RealSysfs::write(const std::string& path, const std::string& value) {
    const std::string full = (fs::path(m_root) / path).string();
    // As the shell's `echo V > FILE` does (sysfs ignores the truncation).
    int fd = ::open(full.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        throw os_error("open " + full, errno);
    ssize_t n = ::write(fd, value.data(), value.size());
    int err = errno;
    ::close(fd);
    if (n < 0)
        throw os_error("write '" + (value == "\n" ? std::string() : value) + "' to " + full, err);
    if (static_cast<std::size_t>(n) != value.size())
        throw Error(ErrorKind::os, "short write to " + full);
}

std::optional<std::string> RealSysfs::driver(const pci::Bdf& bdf) {
    std::error_code ec;
    auto link = fs::read_symlink(fs::path(m_root) / dev_dir(bdf) / "driver", ec);
    if (ec)
        return std::nullopt;
    return link.filename().string();
}

std::string RealSysfs::read(const std::string& path) {
    return read_trimmed(fs::path(m_root) / path);
}

// ---- execution

namespace {

// Runs one step; the error text on failure.
std::optional<std::string> run_step(const Step& s, const pci::Bdf& bdf, Sysfs& sysfs,
                                    const ExecOptions& opt) {
    try {
        switch (s.kind) {
        case Step::Kind::write:
            sysfs.write(s.path, s.value);
            return std::nullopt;
        case Step::Kind::verify_driver: {
            auto deadline = std::chrono::steady_clock::now() + opt.verify_timeout;
            for (;;) {
                auto d = sysfs.driver(bdf);
                if (d.value_or("") == s.value)
                    return std::nullopt;
                if (std::chrono::steady_clock::now() >= deadline)
                    return "bound to " + (d ? *d : std::string("no driver")) + " after " +
                           std::to_string(opt.verify_timeout.count()) + " ms, not " +
                           (s.value.empty() ? std::string("unbound") : s.value);
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        }
        case Step::Kind::verify_numvfs: {
            std::string now = sysfs.read(s.path);
            if (now == s.value)
                return std::nullopt;
            return "sriov_numvfs reads '" + now + "', not " + s.value;
        }
        }
    } catch (const std::exception& e) {
        return std::string(e.what());
    }
    return std::nullopt;
}

bool run_list(const pci::Bdf& bdf, const std::vector<Step>& steps, Sysfs& sysfs,
              const ExecOptions& opt, const char* phase, std::vector<StepResult>& out,
              bool stop_at_failure) {
    bool all = true;
    for (std::size_t i = 0; i < steps.size(); ++i) {
        StepResult r;
        r.number = i + 1;
        r.description = steps[i].what + ": " + describe(steps[i], sysfs.root());
        if (auto err = run_step(steps[i], bdf, sysfs, opt)) {
            r.ok = false;
            r.error = *err;
            all = false;
        }
        out.push_back(r);
        if (opt.on_step)
            opt.on_step(phase, r);
        if (!r.ok && stop_at_failure)
            return false;
    }
    return all;
}

Binding live_binding(Sysfs& sysfs, const pci::Bdf& bdf) {
    Binding b;
    b.driver = sysfs.driver(bdf);
    std::string ov = sysfs.read(dev_dir(bdf) + "/driver_override");
    if (!ov.empty() && ov != "(null)")
        b.driver_override = ov;
    return b;
}

} // namespace

ExecResult run_rollback(const pci::Bdf& bdf, const std::vector<Step>& steps, Sysfs& sysfs,
                        const ExecOptions& options) {
    ExecResult r;
    r.rolled_back = run_list(bdf, steps, sysfs, options, "rollback", r.rollback, false);
    r.ok = r.rolled_back;
    r.after = live_binding(sysfs, bdf);
    return r;
}

ExecResult execute(const Plan& plan, Sysfs& sysfs, const ExecOptions& options) {
    ExecResult r;
    r.ok = run_list(plan.bdf, plan.steps, sysfs, options, "step", r.steps, true);
    if (!r.ok) {
        r.failed_step = r.steps.back().number;
        r.error = r.steps.back().error;
        std::vector<Step> back;
        if (plan.action == "vfs") {
            const std::string path = dev_dir(plan.bdf) + "/sriov_numvfs";
            back.push_back(write_step(path, "0", "disable the VFs"));
            if (plan.original_vfs != 0)
                back.push_back(write_step(path, std::to_string(plan.original_vfs),
                                          "enable " + std::to_string(plan.original_vfs) + " VFs"));
            back.push_back({Step::Kind::verify_numvfs, path, std::to_string(plan.original_vfs),
                            "verify: " + std::to_string(plan.original_vfs) + " VFs"});
        } else {
            try {
                back = restore_steps(sysfs.root(), plan.bdf, plan.original);
            } catch (const std::exception& e) {
                r.rollback.push_back({1, "read the binding", false, e.what()});
            }
        }
        if (!back.empty())
            r.rolled_back = run_list(plan.bdf, back, sysfs, options, "rollback", r.rollback, false);
    }
    try {
        r.after = live_binding(sysfs, plan.bdf);
    } catch (const std::exception&) {
    }
    return r;
}

nlohmann::json to_json(const ExecResult& r) {
    auto list = [](const std::vector<StepResult>& v) {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& s : v) {
            nlohmann::json j{{"number", s.number}, {"step", s.description}, {"ok", s.ok}};
            if (!s.ok)
                j["error"] = s.error;
            a.push_back(std::move(j));
        }
        return a;
    };
    nlohmann::json j{
        {"ok", r.ok},
        {"steps", list(r.steps)},
        {"driver_after", r.after.driver ? nlohmann::json(*r.after.driver) : nlohmann::json()}};
    if (r.failed_step) {
        j["failed_step"] = *r.failed_step;
        j["error"] = r.error;
    }
    if (!r.rollback.empty() || r.failed_step) {
        j["rollback"] = list(r.rollback);
        j["rolled_back"] = r.rolled_back;
    }
    return j;
}

} // namespace dis::hostlend
