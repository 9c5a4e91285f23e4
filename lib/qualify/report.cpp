// A run's report: JSON (dis-tool-qualify(1), JSON REPORT), JUnit XML as Jenkins and GitLab
// read it, and the summary table.
#include "dis/qualify.hpp"

#include <cstdio>
#include <ctime>
#include <sstream>

namespace dis::qualify {

namespace {

std::string xml_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&apos;";
            break;
        default:
            // XML 1.0 allows no control characters but tab, newline and carriage return.
            if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
                out += ' ';
            else
                out += c;
        }
    }
    return out;
}

std::string seconds3(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", s);
    return buf;
}

std::string iso_time(std::int64_t unix_ms) {
    std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return buf;
}

struct Counts {
    std::size_t cases = 0, failed = 0, skipped = 0;
};

Counts count(const RunReport& r) {
    Counts c;
    for (const auto& s : r.steps)
        for (const auto& k : s.cases) {
            ++c.cases;
            c.failed += k.outcome == Outcome::failed;
            c.skipped += k.outcome == Outcome::skipped;
        }
    return c;
}

} // namespace

nlohmann::json to_json(const RunReport& r) {
    const Counts c = count(r);
    nlohmann::json doc = {{"plan", r.plan},
                          {"source", r.source},
                          {"fabric", r.fabric_dir},
                          {"started_ms", r.started_ms},
                          {"seconds", r.seconds},
                          {"interrupted", r.interrupted},
                          {"passed", all_passed(r)},
                          {"summary",
                           {{"steps", r.steps.size()},
                            {"cases", c.cases},
                            {"failed", c.failed},
                            {"skipped", c.skipped}}},
                          {"returned", r.returned},
                          {"steps", nlohmann::json::array()}};
    for (const auto& s : r.steps) {
        nlohmann::json js = {{"name", s.name},
                             {"kind", to_string(s.kind)},
                             {"result", to_string(s.outcome)},
                             {"seconds", s.seconds},
                             {"cases", nlohmann::json::array()}};
        for (const auto& k : s.cases) {
            nlohmann::json jc = {
                {"name", k.name}, {"result", to_string(k.outcome)}, {"seconds", k.seconds}};
            if (!k.message.empty())
                jc["message"] = k.message;
            if (!k.detail.is_null())
                jc["detail"] = k.detail;
            js["cases"].push_back(std::move(jc));
        }
        doc["steps"].push_back(std::move(js));
    }
    return doc;
}

std::string to_junit(const RunReport& r) {
    const Counts c = count(r);
    std::ostringstream x;
    x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    x << "<testsuites name=\"" << xml_escape(r.plan) << "\" tests=\"" << c.cases << "\" failures=\""
      << c.failed << "\" errors=\"0\" skipped=\"" << c.skipped << "\" time=\""
      << seconds3(r.seconds) << "\">\n";
    for (const auto& s : r.steps) {
        std::size_t failed = 0, skipped = 0;
        for (const auto& k : s.cases) {
            failed += k.outcome == Outcome::failed;
            skipped += k.outcome == Outcome::skipped;
        }
        const std::string classname = xml_escape(r.plan + "." + s.name);
        x << "  <testsuite name=\"" << classname << "\" tests=\"" << s.cases.size()
          << "\" failures=\"" << failed << "\" errors=\"0\" skipped=\"" << skipped << "\" time=\""
          << seconds3(s.seconds) << "\" timestamp=\"" << iso_time(r.started_ms) << "\">\n";
        x << "    <properties><property name=\"kind\" value=\"" << to_string(s.kind)
          << "\"/></properties>\n";
        for (const auto& k : s.cases) {
            x << "    <testcase classname=\"" << classname << "\" name=\"" << xml_escape(k.name)
              << "\" time=\"" << seconds3(k.seconds) << "\"";
            if (k.outcome == Outcome::passed) {
                x << "/>\n";
                continue;
            }
            x << ">\n";
            const std::string msg = xml_escape(k.message);
            if (k.outcome == Outcome::failed)
                x << "      <failure message=\"" << msg << "\" type=\"failure\">" << msg
                  << "</failure>\n";
            else
                x << "      <skipped message=\"" << msg << "\"/>\n";
            x << "    </testcase>\n";
        }
        x << "  </testsuite>\n";
    }
    x << "</testsuites>\n";
    return x.str();
}

output::Table to_table(const RunReport& r) {
    output::Table t({"STEP", "KIND", "RESULT", "CASES", "FAILED", "TIME_S", "MESSAGE"});
    for (const auto& s : r.steps) {
        std::size_t failed = 0;
        std::string first;
        for (const auto& k : s.cases)
            if (k.outcome != Outcome::passed) {
                failed += k.outcome == Outcome::failed;
                if (first.empty())
                    first = k.name + ": " + k.message;
            }
        t.add_row({s.name, to_string(s.kind), to_string(s.outcome), std::to_string(s.cases.size()),
                   std::to_string(failed), seconds3(s.seconds), first});
    }
    return t;
}

} // namespace dis::qualify
