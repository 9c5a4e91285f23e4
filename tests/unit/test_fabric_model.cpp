#include "dis/error.hpp"
#include "dis/local_fabric.hpp"
#include "dis/sisci.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>

using namespace dis::fabric;

TEST_CASE("local fabric node ids follow the NTB convention", "[fabric]") {
    CHECK(local_node_ids(3) == std::vector<std::uint32_t>{4, 8, 12});
    CHECK(local_node_ids(1) == std::vector<std::uint32_t>{4});
    CHECK_THROWS_AS(local_node_ids(0), dis::Error);
    CHECK_THROWS_AS(local_node_ids(65), dis::Error);
}

TEST_CASE("SISCI link speeds are spelled like lspci", "[fabric]") {
    CHECK(sisci::link_speed_name(1) == "2.5GT/s");
    CHECK(sisci::link_speed_name(3) == "8GT/s");
    CHECK(sisci::link_speed_name(5) == "32GT/s");
    CHECK(sisci::link_speed_name(2500) == "2.5GT/s");
    CHECK(sisci::link_speed_name(16000) == "16GT/s");
    CHECK(sisci::link_speed_name(0).empty());
    CHECK(sisci::link_speed_name(9).empty());
}

TEST_CASE("find_disd prefers the binary beside dis-tool, then $PATH", "[fabric]") {
    dis::test::TempDir tmp;
    auto make_exe = [](const std::filesystem::path& p) {
        dis::test::write_file(p, "#!/bin/sh\n");
        std::filesystem::permissions(p, std::filesystem::perms::owner_all);
    };
    auto beside = tmp.path() / "bin";
    auto on_path = tmp.path() / "path";
    make_exe(beside / "disd");
    make_exe(on_path / "disd");
    // PATH put back afterwards: later tests in this process run tools found on it (gzip).
    struct RestorePath {
        std::string saved = std::getenv("PATH") ? std::getenv("PATH") : "";
        ~RestorePath() { ::setenv("PATH", saved.c_str(), 1); }
    } restore;
    ::setenv("PATH", on_path.c_str(), 1);
    CHECK(find_disd(beside.string()) == (beside / "disd").string());
    CHECK(find_disd((tmp.path() / "elsewhere").string()) == (on_path / "disd").string());
    // A directory named disd (the build tree's tools/disd) is not the binary.
    std::filesystem::create_directories(tmp.path() / "tools" / "disd");
    make_exe(tmp.path() / "tools" / "disd" / "disd");
    CHECK(find_disd((tmp.path() / "tools").string()) ==
          (tmp.path() / "tools" / "disd" / "disd").string());
    ::setenv("PATH", (tmp.path() / "nothing").c_str(), 1);
    CHECK_THROWS_AS(find_disd((tmp.path() / "elsewhere").string()), dis::Error);
}
