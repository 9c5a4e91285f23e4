// Text as a terminal shows it: UTF-8 decoded into glyphs, each one or two columns wide. One
// measure for every renderer (tables, the monitor's grid), so a UTF-8 name lines up the same
// in a pipe, a table and the live screen.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dis::text {

// UTF-8 text as the glyphs a terminal shows: each with its display width (wcwidth: 1 or 2),
// combining marks joined to the glyph before them, and control characters, invalid bytes and
// other unprintable characters each shown as one '?'. Decoded under a UTF-8 LC_CTYPE whatever
// the process locale.
struct Glyph {
    std::string bytes; // UTF-8
    wchar_t wc = L'?';
    int width = 1;
    std::wstring extra; // combining marks after wc
};
std::vector<Glyph> glyphs(std::string_view text);
int display_width(std::string_view text); // terminal columns
// The longest prefix of whole glyphs that fits in `width` columns (never half a glyph).
std::string fit_width(std::string_view text, int width);
// The glyphs as wide characters (for ncursesw's wide functions).
std::wstring to_wide(std::string_view text);

} // namespace dis::text
