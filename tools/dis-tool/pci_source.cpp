#include "cli.hpp"

namespace dis::cli {

pci::Source PciSourceOptions::source() const {
    if (!dump.empty())
        return pci::Source::dump(dump);
    if (!sysfs_root.empty())
        return pci::Source::sysfs(sysfs_root);
    return pci::Source::live();
}

void add_pci_source_options(CLI::App* cmd, PciSourceOptions& opts) {
    auto* dump = cmd->add_option("--dump", opts.dump,
                                 "Read devices from an lspci -x/-xxx/-xxxx dump file instead of "
                                 "the live system");
    auto* sysfs = cmd->add_option("--sysfs-root", opts.sysfs_root,
                                  "Read devices from a copied /sys tree rooted at DIR");
    sysfs->type_name("DIR");
    dump->type_name("FILE");
    dump->excludes(sysfs);
}

} // namespace dis::cli
