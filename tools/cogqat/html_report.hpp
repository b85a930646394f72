#pragma once
// `--html FILE`: the auto report as one self-contained page. Styles and charts are inline (CSS, SVG), so the
// page opens the same offline, from an attachment or from a CI artifact, and nothing is fetched.

#include <cogqat/core/utf8.hpp>
#include <cogqat/io/file.hpp>
#include <cogqat/qat/auto_quantize.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cogqat::cli {
namespace html {

/// `s` as HTML text: markup characters escaped, bytes that are not UTF-8 as U+FFFD (core/utf8.hpp).
inline std::string esc(std::string_view s) {
    std::string out;
    for (char c : valid_utf8(s)) {
        if (c == '&')
            out += "&amp;";
        else if (c == '<')
            out += "&lt;";
        else if (c == '>')
            out += "&gt;";
        else if (c == '"')
            out += "&quot;";
        else if (c == '\'')
            out += "&#39;";
        else
            out += c;
    }
    return out;
}

// A non-finite value would print as "nan" or "inf"; a dash reads as "not measured".
inline std::string num(fmt::format_string<double> f, double v) {
    return std::isfinite(v) ? fmt::vformat(static_cast<fmt::string_view>(f), fmt::make_format_args(v)) : "–";
}

inline std::string bytes_text(std::uint64_t b) {
    static constexpr std::string_view units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(b);
    std::size_t u = 0;
    while (v >= 1024.0 && u + 1 < std::size(units)) v /= 1024.0, ++u;
    return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.2f} {}", v, units[u]);
}

inline std::string grouped(std::uint64_t n) {
    std::string s = std::to_string(n);
    for (std::size_t i = s.size(); i > 3; i -= 3) s.insert(i - 3, ",");
    return s;
}

inline std::string_view type_label(ggml_type t) { return info(t).name; }

inline double bpw(const tensor_decision& t) {
    return t.elements ? 8.0 * static_cast<double>(t.bytes) / static_cast<double>(t.elements) : 0.0;
}

// Fixed per type, so the same type has the same colour in every report and every chart.
inline std::string_view type_colour(ggml_type t) {
    using enum ggml_type;
    static constexpr std::pair<ggml_type, std::string_view> colours[] = {
            {q2_K, "#d62728"}, {q3_K, "#ff7f0e"}, {q4_0, "#bcbd22"}, {q4_1, "#8c564b"}, {q4_K, "#e377c2"}, {q5_0, "#17becf"},
            {q5_1, "#9467bd"}, {q5_K, "#2ca02c"}, {q6_K, "#1f77b4"}, {q8_0, "#393b79"}, {f16, "#111827"},  {f32, "#98a2b3"}};
    for (const auto& [type, colour] : colours)
        if (type == t) return colour;
    return "#c7c7c7";
}

// f16 can measure exactly 0 KL; a log axis needs a floor to put it on.
inline constexpr double kl_floor = 1e-7;

struct axis {
    double lo = 0.0, hi = 1.0;
    bool log = false;
    bool integers = false;  // ticks on whole numbers only (step indices)
};

// Every axis gets a finite, positive width, so mapping to pixels never divides by zero or yields NaN.
inline axis make_axis(double lo, double hi, bool log = false, bool integers = false) {
    if (!std::isfinite(lo)) lo = log ? kl_floor : 0.0;
    if (!std::isfinite(hi)) hi = lo;
    if (log) {
        lo = std::pow(10.0, std::floor(std::log10(std::max(lo, kl_floor))));
        hi = std::pow(10.0, std::min(300.0, std::ceil(std::log10(std::max(hi, lo)))));
        if (hi <= lo) hi = lo * 10.0;
    } else if (hi <= lo) {
        hi = lo + 1.0;
    }
    return {lo, hi, log, integers};
}

inline std::vector<double> ticks(const axis& a) {
    std::vector<double> t;
    if (a.log) {
        const long first = std::lround(std::log10(a.lo)), last = std::lround(std::log10(a.hi));
        const long every = std::max(1L, (last - first + 7) / 8);  // at most ~8 decade labels
        for (long k = first; k <= last; k += every) t.push_back(std::pow(10.0, static_cast<double>(k)));
        return t;
    }
    const double raw = (a.hi - a.lo) / 5.0, mag = std::pow(10.0, std::floor(std::log10(raw))), n = raw / mag;
    double step = (n < 1.5 ? 1.0 : n < 3.0 ? 2.0 : n < 7.0 ? 5.0 : 10.0) * mag;
    if (a.integers) step = std::max(1.0, std::round(step));
    const double start = std::ceil(a.lo / step - 1e-9) * step;
    for (int i = 0; i < 64 && start + i * step <= a.hi + step * 1e-9; ++i) {  // bounded even if step underflows
        const double v = start + i * step;
        t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);  // no "-0" label
    }
    return t;
}

inline std::string tick_label(const axis& a, double v) {
    return a.log ? fmt::format("1e{}", std::lround(std::log10(v))) : fmt::format("{:g}", v);
}

/// A plot area inside fixed margins: maps data to pixels, draws the axes, collects the marks.
class svg_chart {
public:
    static constexpr double top = 24, right = 52, bottom = 40;

    svg_chart(double width, double height, double left, axis x, axis y) : w_(width), h_(height), left_(left), x_(x), y_(y) {}

    [[nodiscard]] double x(double v) const { return to_pixels(v, x_, left_, w_ - right); }
    [[nodiscard]] double y(double v) const { return to_pixels(v, y_, h_ - bottom, top); }
    /// Centre of category row i, counted down from the top (the y axis spans [0, rows]).
    [[nodiscard]] double row(std::size_t i) const { return y(y_.hi - static_cast<double>(i) - 0.5); }

    template <typename... T>
    void add(fmt::format_string<T...> f, T&&... args) {
        fmt::format_to(std::back_inserter(body_), f, std::forward<T>(args)...);
    }

    void x_axis(std::string_view title) {
        const bool tall = h_ > 500;  // a long chart repeats its scale on top, where reading starts
        for (double t : ticks(x_)) {
            add(R"(<line class="grid" x1="{0:.1f}" x2="{0:.1f}" y1="{1:.1f}" y2="{2:.1f}"/>)", x(t), top, h_ - bottom);
            add(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="middle">{}</text>)", x(t), h_ - bottom + 15, tick_label(x_, t));
            if (tall) add(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="middle">{}</text>)", x(t), top - 7, tick_label(x_, t));
        }
        add(R"(<line class="axis" x1="{0:.1f}" x2="{1:.1f}" y1="{2:.1f}" y2="{2:.1f}"/>)", left_, w_ - right, h_ - bottom);
        add(R"(<text class="title" x="{:.1f}" y="{:.1f}" text-anchor="middle">{}</text>)", (left_ + w_ - right) / 2, h_ - 6, esc(title));
    }

    void y_axis(std::string_view title) {
        for (double t : ticks(y_)) {
            add(R"(<line class="grid" x1="{0:.1f}" x2="{1:.1f}" y1="{2:.1f}" y2="{2:.1f}"/>)", left_, w_ - right, y(t));
            add(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="end">{}</text>)", left_ - 6, y(t) + 4, tick_label(y_, t));
        }
        add(R"(<line class="axis" x1="{0:.1f}" x2="{0:.1f}" y1="{1:.1f}" y2="{2:.1f}"/>)", left_, top, h_ - bottom);
        add(R"~(<text class="title" transform="translate(13 {:.1f}) rotate(-90)" text-anchor="middle">{}</text>)~", (top + h_ - bottom) / 2,
            esc(title));
    }

    // Alternate rows are shaded so a dot or bar far from its label is still read against the right row.
    void row_labels(const std::vector<std::string>& names) {
        const double height = std::abs(y(0.0) - y(1.0));
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (i % 2)
                add(R"(<rect class="stripe" x="0" y="{:.1f}" width="{:.0f}" height="{:.1f}"/>)", row(i) - height / 2, w_ - right, height);
            add(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="end">{}</text>)", left_ - 8, row(i) + 4, esc(names[i]));
        }
    }

    [[nodiscard]] std::string str() const {
        return fmt::format(
                R"(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {0:.0f} {1:.0f}" width="{0:.0f}" height="{1:.0f}">{2}</svg>)", w_,
                h_, body_);
    }

private:
    static double to_pixels(double v, const axis& a, double from, double to) {
        auto scale = [&](double u) { return a.log ? std::log10(std::max(u, kl_floor)) : u; };
        const double lo = scale(a.lo), hi = scale(a.hi);
        double u = scale(v);
        u = std::clamp(std::isnan(u) ? lo : u, lo, hi);  // NaN to the start, infinities to the ends
        return from + (u - lo) / (hi - lo) * (to - from);
    }

    double w_, h_, left_;
    axis x_, y_;
    std::string body_;
};

inline constexpr double chart_width = 1040, row_height = 16;

// Room for the longest row label in 11px monospace (about 6.7px a character), within reason.
inline double label_margin(const std::vector<std::string>& names) {
    std::size_t longest = 0;
    for (const auto& n : names) longest = std::max(longest, n.size());
    return std::clamp(12.0 + 6.7 * static_cast<double>(longest), 60.0, 340.0);
}

// One row per tensor, labelled on the left, the value axis along the bottom (repeated on top when tall).
inline svg_chart row_chart(const std::vector<std::string>& names, axis x, std::string_view title) {
    const double rows = static_cast<double>(names.size());
    svg_chart c(chart_width, svg_chart::top + svg_chart::bottom + row_height * rows, label_margin(names), x, axis{0.0, rows});
    c.x_axis(title);
    c.row_labels(names);
    return c;
}

inline std::string note(std::string_view text) { return fmt::format(R"(<p class="empty">{}</p>)", esc(text)); }

// The types a chart shows (the candidates, or the chosen ones), fewest bits first.
inline std::string legend(const auto_report& r, bool candidates) {
    std::vector<ggml_type> types;
    for (const auto& t : r.tensors) {
        if (!candidates) types.push_back(t.type);
        for (const auto& c : t.candidates)
            if (candidates) types.push_back(c.type);
    }
    auto key = [](ggml_type t) { return std::pair(info(t).bits_per_weight(), t); };
    std::sort(types.begin(), types.end(), [&](ggml_type a, ggml_type b) { return key(a) < key(b); });
    types.erase(std::unique(types.begin(), types.end()), types.end());
    std::string out = R"(<div class="legend">)";
    for (ggml_type t : types)
        out += fmt::format(R"(<span><i class="chip" style="background:{}"></i>{}</span>)", type_colour(t), type_label(t));
    return out + "</div>";
}

inline std::string sensitivity_chart(const auto_report& r) {
    std::vector<const tensor_decision*> m;
    std::vector<std::string> names;
    double lo = INFINITY, hi = 0.0;
    for (const auto& t : r.tensors) {
        if (t.candidates.empty()) continue;
        m.push_back(&t), names.push_back(t.name);
        for (const auto& c : t.candidates) lo = std::min(lo, std::max(c.kl, kl_floor)), hi = std::max(hi, c.kl);
    }
    if (m.empty()) return note("No matrix had candidate types to compare.");
    svg_chart c =
            row_chart(names, make_axis(lo, hi, true), "KL divergence with only this tensor quantized (nats, log scale; 0 drawn at 1e-7)");
    for (std::size_t i = 0; i < m.size(); ++i) {
        const auto [low, high] = std::minmax_element(m[i]->candidates.begin(), m[i]->candidates.end(),
                                                     [](const auto& a, const auto& b) { return a.kl < b.kl; });
        c.add(R"(<line class="span" x1="{0:.1f}" x2="{1:.1f}" y1="{2:.1f}" y2="{2:.1f}"/>)", c.x(low->kl), c.x(high->kl), c.row(i));
        // The chosen type is drawn last, ringed, so no other dot hides it.
        auto dot = [&](const candidate_measure& k, bool chosen) {
            c.add(R"(<circle cx="{:.1f}" cy="{:.1f}" r="{}" fill="{}"{}><title>{} {}: KL {}, {}</title></circle>)", c.x(k.kl), c.row(i),
                  chosen ? 5.5 : 3.5, type_colour(k.type), chosen ? R"( stroke="#111" stroke-width="2")" : R"( fill-opacity="0.85")",
                  esc(m[i]->name), type_label(k.type), num("{:.3e}", k.kl), bytes_text(k.bytes));
        };
        for (const auto& k : m[i]->candidates)
            if (k.type != m[i]->type) dot(k, false);
        for (const auto& k : m[i]->candidates)
            if (k.type == m[i]->type) dot(k, true);
    }
    return fmt::format(R"(<div class="scroll">{}</div>)", c.str());
}

inline std::string bits_chart(const auto_report& r) {
    if (r.tensors.empty()) return note("No tensors.");
    std::vector<std::string> names;
    double most = 0.0;
    for (const auto& t : r.tensors) names.push_back(t.name), most = std::max(most, bpw(t));
    svg_chart c = row_chart(names, make_axis(0.0, most * 1.05), "bits per weight as stored");
    for (std::size_t i = 0; i < r.tensors.size(); ++i) {
        const auto& t = r.tensors[i];
        const double x0 = c.x(0.0), x1 = c.x(bpw(t)), y = c.row(i);
        c.add(R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" rx="2" fill="{}"><title>{}: {} {}</title></rect>)", x0,
              y - row_height * 0.35, x1 - x0, row_height * 0.7, type_colour(t.type), esc(t.name), type_label(t.type), bytes_text(t.bytes));
        c.add(R"(<text x="{:.1f}" y="{:.1f}">{:.2f} {}</text>)", x1 + 4, y + 4, bpw(t), type_label(t.type));
    }
    return fmt::format(R"(<div class="scroll">{}</div>)", c.str());
}

inline std::string histogram_chart(const auto_report& r) {
    const auto& h = r.error_histogram;
    if (h.empty()) return note("No error histogram was recorded.");
    double total = 0.0, most = 0.0;
    for (auto n : h) total += static_cast<double>(n), most = std::max(most, static_cast<double>(n));
    const double share = total > 0.0 ? 100.0 * most / total : 0.0, width = 4.1 / static_cast<double>(h.size());
    svg_chart c(chart_width, 260, 60, make_axis(-2.05, 2.05), make_axis(0.0, share * 1.1));
    c.x_axis("(w − q) / rms(w) of every quantized weight");
    c.y_axis("% of weights");
    for (std::size_t i = 0; i < h.size(); ++i) {
        const double from = -2.05 + width * static_cast<double>(i), pct = total > 0.0 ? 100.0 * static_cast<double>(h[i]) / total : 0.0;
        c.add(R"(<rect class="bin" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}"><title>[{:.2f}, {:.2f}): {} weights</title></rect>)",
              c.x(from) + 0.5, c.y(pct), std::max(0.0, c.x(from + width) - c.x(from) - 1.0), c.y(0.0) - c.y(pct), from, from + width, h[i]);
    }
    if (total == 0.0)
        c.add(R"(<text class="title" x="{:.1f}" y="{:.1f}" text-anchor="middle">no quantized weights</text>)", c.x(0.0),
              c.y(share * 0.55 + 0.5));
    return c.str();
}

inline std::string steps_chart(const auto_report& r) {
    const auto& s = r.steps;
    if (s.empty()) return note("No progressive steps were taken.");
    double kl_max = 0.0, retention_min = r.accuracy_threshold;
    for (const auto& p : s) kl_max = std::max(kl_max, p.score.kl), retention_min = std::min(retention_min, p.score.retention());
    const axis steps = make_axis(0.5, static_cast<double>(s.size()) + 0.5, false, true);
    const double pad = std::max(0.15 * (1.0 - retention_min), 0.002);
    svg_chart kl(chart_width, 250, 64, steps, make_axis(0.0, kl_max * 1.15));
    svg_chart retention(chart_width, 190, 64, steps, make_axis(retention_min - pad, 1.0 + pad / 3));
    kl.x_axis("step (tensors applied least sensitive first)");
    kl.y_axis("KL (nats)");
    retention.x_axis("step");
    retention.y_axis("retention");
    const double threshold_y = retention.y(r.accuracy_threshold);
    retention.add(R"(<line class="limit" x1="{0:.1f}" x2="{1:.1f}" y1="{2:.1f}" y2="{2:.1f}"/>)", retention.x(steps.lo),
                  retention.x(steps.hi), threshold_y);
    retention.add(R"(<text class="limit" x="{:.1f}" y="{:.1f}" text-anchor="end">threshold {}</text>)", retention.x(steps.hi) - 4,
                  threshold_y - 5, num("{:g}", r.accuracy_threshold));
    // One routine for both panels keeps the undone marks identical in each.
    auto series = [&](svg_chart& c, auto value) {
        std::string points;
        for (std::size_t i = 0; i < s.size(); ++i)
            points += fmt::format("{:.1f},{:.1f} ", c.x(static_cast<double>(i + 1)), c.y(value(s[i])));
        c.add(R"(<polyline class="series" points="{}"/>)", points);
        for (std::size_t i = 0; i < s.size(); ++i)
            c.add(R"(<circle class="{}" cx="{:.1f}" cy="{:.1f}" r="{}"><title>{}. {} {}: KL {}, retention {}{}</title></circle>)",
                  s[i].undone ? "undone" : "applied", c.x(static_cast<double>(i + 1)), c.y(value(s[i])), s[i].undone ? 5 : 3.5, i + 1,
                  esc(s[i].tensor), type_label(s[i].type), num("{:.5f}", s[i].score.kl), num("{:.4f}", s[i].score.retention()),
                  s[i].undone ? " (undone: " + esc(s[i].reason) + ")" : "");
    };
    series(kl, [](const progressive_step& p) { return p.score.kl; });
    series(retention, [](const progressive_step& p) { return p.score.retention(); });
    return kl.str() + retention.str() +
           R"(<div class="legend"><span><i class="chip applied"></i>applied</span><span><i class="chip undone"></i>undone (score after the undo)</span></div>)";
}

inline std::string tile(std::string_view label, const std::string& value, const std::string& detail, std::string_view cls = "") {
    return fmt::format(R"(<div class="tile {}"><small>{}</small><b>{}</b><span>{}</span></div>)", cls, label, value, detail);
}

inline std::string section(std::string_view title, std::string_view why, const std::string& body) {
    return fmt::format(R"(<section><h2>{}</h2><p class="why">{}</p>{}</section>)", title, why, body);
}

// `head` lists the columns, a leading '<' marking a left-aligned (text) one.
inline std::string table(std::initializer_list<std::string_view> head, const std::string& rows) {
    std::string out = "<table><tr>";
    for (auto h : head) out += h.starts_with('<') ? fmt::format(R"(<th class="l">{}</th>)", h.substr(1)) : fmt::format("<th>{}</th>", h);
    return out + "</tr>" + rows + "</table>";
}

inline std::string_view source_text(calibration_source s) {
    return s == calibration_source::self_generated  ? "token sequences the model wrote itself"
           : s == calibration_source::random_tokens ? "random token ids"
                                                    : "hidden states drawn from the embedding statistics";
}

inline constexpr std::string_view style = R"(
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--good:#127a3e;--bad:#b42318}
body{margin:0;background:#f4f5f7;color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 2px}
.path,td.l{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}.path{color:var(--muted)}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px;margin:16px 0}
.tile,section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px 16px}
section{margin:16px 0;overflow-x:auto}.tile small{color:var(--muted);text-transform:uppercase;font-size:11px;letter-spacing:.04em}
.tile b{display:block;font-size:22px;margin:2px 0}.tile span,.why,.empty{color:var(--muted);font-size:12.5px}
.good{border-left:5px solid var(--good)}.good b{color:var(--good)}.bad{border-left:5px solid var(--bad)}.bad b{color:var(--bad)}
.why{margin:0 0 8px}.why:empty{display:none}.notes{margin:0;padding-left:20px}.legend{margin:6px 0}.legend span{display:inline-block;margin-right:14px;font-size:12px}
.chip{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:4px;vertical-align:-1px}
.chip.applied{background:#2563eb;border-radius:50%}.chip.undone{border:2px solid var(--bad);border-radius:50%;width:8px;height:8px}
.scroll{max-height:700px;overflow-y:auto}
table{border-collapse:collapse;width:100%;font-size:12.5px}th{color:var(--muted);font-weight:600}
th,td{padding:3px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}th.l,td.l{text-align:left}
tr.undone td{color:var(--bad)}
svg{display:block;max-width:100%;height:auto}svg text{font:11px ui-monospace,Menlo,Consolas,monospace;fill:#344054}
svg .title{font:12px system-ui,sans-serif;fill:var(--muted)}.grid{stroke:#eef0f3}.axis{stroke:#98a2b3}.span{stroke:#d0d5dd;stroke-width:2}.stripe{fill:#f7f8fa}
.bin{fill:#4f7cc9}.series{fill:none;stroke:#2563eb;stroke-width:1.5}.applied{fill:#2563eb}.undone{fill:#fff;stroke:var(--bad);stroke-width:2}
.limit{stroke:var(--bad);stroke-dasharray:5 4}text.limit{stroke:none;fill:var(--bad)}
)";

/// The page's head (styles inline) and its title block; `subtitle` is already HTML.
inline std::string page_start(std::string_view title, std::string_view heading, const std::string& subtitle) {
    return fmt::format(
            R"(<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">)"
            R"(<title>{}</title><style>{}</style></head><body><main><h1>{}</h1><p class="path">{}</p>)",
            esc(title), style, esc(heading), subtitle);
}

/// "64 × 172": extents as a page shows them.
inline std::string shape_label(const std::vector<std::uint64_t>& shape) {
    std::string out;
    for (auto d : shape) out += (out.empty() ? "" : " × ") + std::to_string(d);
    return out;
}

}  // namespace html

/// Writes the auto report `r` of `input` -> `output` to `path` as one self-contained HTML page.
inline void write_html_report(const std::filesystem::path& path, const auto_report& r, const std::string& input,
                              const std::string& output) {
    using namespace html;
    std::string page = page_start("cogqat: " + output, "Data-free quantization report",
                                  fmt::format("{} → {} ({} s)", esc(input), esc(output), num("{:.1f}", r.seconds)));
    const bool met = r.meets_accuracy_threshold;
    page += R"(<div class="tiles">)" +
            tile("File", bytes_text(r.file_bytes),
                 fmt::format("{} bytes; tensors {} of a {} budget{}{}", grouped(r.file_bytes), bytes_text(r.tensor_bytes),
                             bytes_text(r.budget_bytes), r.budget_is_file_size ? " for the file" : "",
                             r.budget_raised ? " (the smallest possible: the default target was out of reach)" : "")) +
            tile("Bits per weight", num("{:.3f}", r.bits_per_weight),
                 fmt::format("over {} weights ({} stored)", grouped(r.parameters), grouped(r.stored_elements))) +
            tile("Against F16", num("{:.2f}× smaller", r.compression_vs_f16),
                 num("memory reduction {:.1f}%", 100.0 * r.memory_reduction_vs_f16)) +
            tile("Validation of the written file", "KL " + num("{:.5f}", r.validation.kl),
                 num("top-1 agreement {:.2f}%", 100.0 * r.validation.top1) + "; predicted KL " + num("{:.5f}", r.predicted_kl)) +
            tile("Retention exp(−ΔNLL)", num("{:.4f}", r.validation.retention()),
                 fmt::format("threshold {}: {}", num("{:g}", r.accuracy_threshold), met ? "met" : "NOT met"), met ? "good" : "bad") +
            tile("Calibration", fmt::format("{} positions", grouped(r.calibration_positions)),
                 fmt::format("{}; no text read; teacher NLL {}", source_text(r.source), num("{:.4f}", r.teacher_nll))) +
            "</div>";

    std::string notes;
    if (r.classifier_tied) notes += "<li>output.weight equals token_embd.weight: stored once (tied classifier).</li>";
    if (r.feed_forward_to != r.feed_forward_from)
        notes += fmt::format("<li>Feed-forward width padded {} → {} with zero units (exact), so ffn_down fits 32-value blocks.</li>",
                             r.feed_forward_from, r.feed_forward_to);
    page += section("Exact reshapes", "",
                    fmt::format(R"(<ul class="notes">{}</ul>)", notes.empty() ? "<li>No reshape was needed.</li>" : notes));

    page += section(
            "Sensitivity per tensor",
            "Each dot is the KL of the model's output when only this tensor is quantized to that type; the ringed dot is the type chosen. "
            "Rows whose dots sit far right are the sensitive tensors, which get more bits.",
            legend(r, true) + sensitivity_chart(r));
    page += section("Bits per weight", "As stored; 1-D tensors (norms) stay f32 at 32 bits.", legend(r, false) + bits_chart(r));
    page += section("Quantization error",
                    "(w − q) / rms(w) over all quantized weights, each tensor on its own scale: a narrow peak at 0 is good.",
                    histogram_chart(r));
    page += section("Progressive application",
                    "Tensors are applied least sensitive first; after each step KL and retention are re-measured on the calibration set, "
                    "and a step that breaks a limit is undone.",
                    steps_chart(r));

    std::string rows;
    for (const auto& t : r.tensors) {
        const std::string shape = shape_label(t.shape);
        const bool measured = !t.candidates.empty();  // 1-D tensors are kept f32, never measured
        rows += fmt::format(
                R"(<tr><td class="l">{}</td><td class="l">{}</td><td class="l"><i class="chip" style="background:{}"></i>{}</td>)"
                R"(<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>)",
                esc(t.name), shape, type_colour(t.type), type_label(t.type), grouped(t.bytes), num("{:.2f}", bpw(t)),
                measured ? num("{:.3e}", t.predicted_kl) : "–", measured ? num("{:.4f}", t.relative_rmse) : "–");
    }
    if (!r.tensors.empty())
        page += section("Tensors", "", table({"<tensor", "<shape", "<type", "bytes", "bpw", "predicted KL", "relative RMSE"}, rows));

    rows.clear();
    for (std::size_t i = 0; i < r.steps.size(); ++i) {
        const auto& s = r.steps[i];
        rows += fmt::format(
                R"(<tr class="{}"><td>{}</td><td class="l">{}</td><td class="l">{}</td><td>{}</td><td>{}</td><td>{}</td><td class="l">{}</td></tr>)",
                s.undone ? "undone" : "", i + 1, esc(s.tensor), type_label(s.type), num("{:.5f}", s.score.kl),
                num("{:.2f}%", 100.0 * s.score.top1), num("{:.4f}", s.score.retention()),
                (s.undone ? "undone" : "applied") + (s.reason.empty() ? "" : ": " + esc(s.reason)));
    }
    if (!r.steps.empty()) page += section("Steps", "", table({"#", "<tensor", "<type", "KL", "top-1", "retention", "<outcome"}, rows));
    page += "</main></body></html>\n";
    io::write_file_atomically(path, std::as_bytes(std::span(page.data(), page.size())));
}

}  // namespace cogqat::cli
