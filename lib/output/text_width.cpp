// Text as terminal cells: UTF-8 decoded with mbrtowc and measured with wcwidth under a UTF-8
// LC_CTYPE of this thread's own (C.UTF-8), whatever the process locale is, so that the grid
// measures a name the same way in a test, a pipe and a terminal.
#include "dis/text_width.hpp"

#include <algorithm>
#include <clocale>
#include <cwchar>
#include <locale.h>

namespace dis::text {

namespace {

// The UTF-8 locale, made once (nullptr when the C library has none: every byte outside
// ASCII is then shown as '?').
locale_t utf8_locale() {
    static const locale_t loc = [] {
        for (const char* name : {"C.UTF-8", "C.utf8", "en_US.UTF-8"})
            if (locale_t l = ::newlocale(LC_CTYPE_MASK, name, static_cast<locale_t>(nullptr)))
                return l;
        return static_cast<locale_t>(nullptr);
    }();
    return loc;
}

// This thread uses the UTF-8 locale while the object lives.
class Utf8Scope {
public:
    Utf8Scope() : m_old(utf8_locale() ? ::uselocale(utf8_locale()) : nullptr) {}
    ~Utf8Scope() {
        if (m_old)
            ::uselocale(m_old);
    }
    Utf8Scope(const Utf8Scope&) = delete;
    Utf8Scope& operator=(const Utf8Scope&) = delete;

private:
    locale_t m_old;
};

bool plain_ascii(std::string_view text) {
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f)
            return false;
    }
    return true;
}

} // namespace

std::vector<Glyph> glyphs(std::string_view text) {
    std::vector<Glyph> out;
    out.reserve(text.size());
    if (plain_ascii(text)) { // the common case: no locale switch
        for (char c : text)
            out.push_back({std::string(1, c), static_cast<wchar_t>(c), 1, {}});
        return out;
    }
    Utf8Scope scope;
    const bool utf8 = utf8_locale() != nullptr;
    std::mbstate_t state{};
    std::size_t i = 0;
    while (i < text.size()) {
        const auto u = static_cast<unsigned char>(text[i]);
        if (u < 0x80 || !utf8) {
            const bool printable = u >= 0x20 && u < 0x7f;
            out.push_back({printable ? std::string(1, text[i]) : std::string("?"),
                           printable ? static_cast<wchar_t>(u) : L'?',
                           1,
                           {}});
            ++i;
            continue;
        }
        wchar_t wc = 0;
        const std::size_t n = std::mbrtowc(&wc, text.data() + i, text.size() - i, &state);
        if (n == static_cast<std::size_t>(-1) || n == static_cast<std::size_t>(-2) || n == 0) {
            state = std::mbstate_t{}; // an invalid or cut sequence: one '?' per byte
            out.push_back({"?", L'?', 1, {}});
            ++i;
            continue;
        }
        const std::string bytes(text.substr(i, n));
        i += n;
        const int w = ::wcwidth(wc);
        if (w < 0) {
            out.push_back({"?", L'?', 1, {}}); // not printable (C1 controls and the like)
        } else if (w == 0) {
            // A combining mark belongs to the glyph before it; alone it is dropped.
            if (!out.empty() && out.back().bytes != "?") {
                out.back().bytes += bytes;
                out.back().extra += wc;
            }
        } else {
            out.push_back({bytes, wc, w > 1 ? 2 : 1, {}});
        }
    }
    return out;
}

int display_width(std::string_view text) {
    if (plain_ascii(text))
        return static_cast<int>(text.size());
    int w = 0;
    for (const auto& g : glyphs(text))
        w += g.width;
    return w;
}

std::string fit_width(std::string_view text, int width) {
    if (plain_ascii(text))
        return std::string(text.substr(0, static_cast<std::size_t>(std::max(width, 0))));
    std::string out;
    int used = 0;
    for (const auto& g : glyphs(text)) {
        if (used + g.width > width)
            break;
        out += g.bytes;
        used += g.width;
    }
    return out;
}

std::wstring to_wide(std::string_view text) {
    std::wstring out;
    for (const auto& g : glyphs(text)) {
        out.push_back(g.wc);
        out += g.extra;
    }
    return out;
}

} // namespace dis::text
