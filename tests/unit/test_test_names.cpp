// catch_discover_tests splits a test name at ';' into ctest entries that match no test case
// and "pass" without running anything; a name with a ';' would be a test that never runs.
#include "support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>

TEST_CASE("no test case name holds a semicolon (ctest would silently run nothing)", "[meta]") {
    const std::regex name(R"re(TEST_CASE\(\s*"([^"]*)")re");
    std::size_t cases = 0;
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(std::string(DIS_SOURCE_DIR) + "/tests")) {
        if (entry.path().extension() != ".cpp")
            continue;
        const std::string text = dis::test::read_file(entry.path());
        for (std::sregex_iterator it(text.begin(), text.end(), name), end; it != end; ++it) {
            ++cases;
            INFO(entry.path().string() << ": " << (*it)[1]);
            CHECK((*it)[1].str().find(';') == std::string::npos);
        }
    }
    CHECK(cases > 200);
}
