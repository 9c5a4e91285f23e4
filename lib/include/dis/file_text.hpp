// Reading a small file whole with read(2). /proc files of a process that exits meanwhile fail
// their read with ESRCH, which libstdc++'s filebuf throws through istreambuf_iterator even with
// stream exceptions off; callers that scan other processes need a read that cannot throw.
#pragma once

#include <optional>
#include <string>

namespace dis {

// The file's whole text; nullopt when it cannot be opened or a read fails.
std::optional<std::string> read_file_text(const std::string& path);

} // namespace dis
