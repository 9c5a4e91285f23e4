// SCIGetErrorString against the header: every SCI_ERR_* code of sisci_error.h has a text of its
// own. The codes are read from the header itself, so a code added there without a text fails.
#include <catch2/catch.hpp>

#include <sisci_api.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace {

// name -> value of every enumerator `SCI_ERR_X = 0x...` in sisci_error.h.
std::map<std::string, long> header_error_codes() {
    std::ifstream in(std::string(DIS_SOURCE_DIR) + "/lib/sisci/include/sisci_error.h");
    REQUIRE(in.good());
    std::stringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    std::map<std::string, long> codes;
    const std::regex enumerator(R"((SCI_ERR_\w+)\s*=\s*(0x[0-9A-Fa-f]+|[0-9]+))");
    for (auto it = std::sregex_iterator(s.begin(), s.end(), enumerator);
         it != std::sregex_iterator(); ++it) {
        codes[(*it)[1].str()] = std::stol((*it)[2].str(), nullptr, 0);
    }
    return codes;
}

} // namespace

TEST_CASE("SCIGetErrorString has one distinct text for every error code of sisci_error.h",
          "[fabric][sisci][errors]") {
    const auto codes = header_error_codes();
    // The header's codes as the test sees them (guards the parsing itself).
    REQUIRE(codes.size() >= 49);
    REQUIRE(codes.at("SCI_ERR_OK") == 0);
    REQUIRE(codes.at("SCI_ERR_NO_SUCH_INTNO") == codes.at("SCI_ERR_NO_SUCH_SEGMENT"));

    const std::string unknown = SCIGetErrorString(static_cast<sci_error_t>(0x7FFF));
    std::map<long, std::string> text_of;
    for (const auto& [name, value] : codes) {
        INFO(name);
        const char* text = SCIGetErrorString(static_cast<sci_error_t>(value));
        REQUIRE(text != nullptr);
        CHECK(std::string(text) != unknown);
        CHECK(!std::string(text).empty());
        text_of[value] = text;
    }
    // Codes that differ have texts that differ (aliases such as NO_SUCH_INTNO share one).
    std::set<std::string> texts;
    for (const auto& [value, text] : text_of) {
        INFO(text);
        CHECK(texts.insert(text).second);
    }
    CHECK(unknown == "Unknown error");
    CHECK(std::string(SCIGetErrorString(SCI_ERR_OK)) == "OK");
    CHECK(std::string(SCIGetErrorString(SCI_ERR_NO_SUCH_INTNO)) == "No such segment or interrupt");
}
