// fmt's compiled part, built once for the whole program.
//
// Debian's libfmt-dev ships only libfmt.so (no .a for the static release binary), and
// header-only fmt (FMT_HEADER_ONLY) compiles fmt's formatting core again in every
// translation unit that formats: about 2.5 s of compile time each at -O2. So the code
// base uses fmt as a compiled library and this file is that library: format-inl.h holds
// the definitions, and the templates the installed headers leave to the library are
// instantiated here: the extern templates of <fmt/format.h> (its `#ifndef
// FMT_HEADER_ONLY` block), dragonbox::to_decimal and locale_ref's members (declared
// FMT_API in <fmt/format.h> and <fmt/core.h>). A missing one is a link error, not a
// silent fallback.
#include <fmt/format-inl.h>

#include <locale>

FMT_BEGIN_NAMESPACE
namespace detail {

template FMT_API auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template FMT_API auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;

template FMT_API locale_ref::locale_ref(const std::locale& loc);
template FMT_API auto locale_ref::get<std::locale>() const -> std::locale;

template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
template FMT_API void buffer<char>::append(const char*, const char*);
template FMT_API void vformat_to(buffer<char>&, string_view, basic_format_args<FMT_BUFFER_CONTEXT(char)>, locale_ref);

template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<wchar_t>;
template FMT_API auto decimal_point_impl(locale_ref) -> wchar_t;

} // namespace detail
FMT_END_NAMESPACE
