// read_file_text: the whole-file read used on other processes' /proc files, where a failed
// read must come back as "cannot be read", never as an exception.
#include "support.hpp"

#include "dis/file_text.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>

using dis::read_file_text;

TEST_CASE("read_file_text reads a file whole, past one buffer, with its NUL bytes", "[util]") {
    dis::test::TempDir dir;
    std::string text;
    for (int i = 0; i < 3000; ++i)
        text += "line " + std::to_string(i) + '\0';
    const std::string path = (dir.path() / "f").string();
    std::ofstream(path, std::ios::binary) << text;
    const auto got = read_file_text(path);
    REQUIRE(got);
    CHECK(got->size() == text.size());
    CHECK(*got == text);
    std::ofstream((dir.path() / "empty").string()).flush();
    CHECK(read_file_text((dir.path() / "empty").string()) == std::string());
}

TEST_CASE("read_file_text: a missing file or a failing read is nullopt, not an exception",
          "[util]") {
    dis::test::TempDir dir;
    CHECK_FALSE(read_file_text((dir.path() / "missing").string()));
    // A directory opens but its read(2) fails (EISDIR), as a /proc file of a process that exited
    // fails with ESRCH. The stream read this replaced throws there even with exceptions off.
    std::ifstream in(dir.path().string(), std::ios::binary);
    REQUIRE(in.is_open());
    CHECK_THROWS(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
    CHECK_NOTHROW(read_file_text(dir.path().string()));
    CHECK_FALSE(read_file_text(dir.path().string()));
}

TEST_CASE("read_file_text reads another process's /proc cmdline, and nothing once it is gone",
          "[util]") {
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        execlp("sleep", "sleep", "30", static_cast<char*>(nullptr));
        _exit(127);
    }
    const std::string cmdline = "/proc/" + std::to_string(child) + "/cmdline";
    std::string seen;
    for (int i = 0; i < 200 && seen.rfind("sleep", 0) != 0; ++i) {
        seen = read_file_text(cmdline).value_or("");
        usleep(10000);
    }
    CHECK(seen == std::string("sleep\0"
                              "30\0",
                              9));
    kill(child, SIGKILL);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK_NOTHROW(read_file_text(cmdline));
    CHECK(read_file_text(cmdline).value_or("").empty());
}
