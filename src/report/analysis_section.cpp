// The routing-analysis part of the report: MI per layer, expert × domain heatmaps, the most
// frequent bytes per expert and text coloured by first-choice expert.
#include <algorithm>
#include <cmath>

#include "report_internal.h"

namespace moe::report::detail {

namespace {

std::string swatch(int e, int E) {
  return "<span class=\"sw\" style=\"background:" + expert_colour(e, E) + "\"></span>";
}

// Text of one sample, each run of bytes with the same expert in one coloured span.
std::string coloured_text(const json& sample, int E) {
  const auto bytes = need(sample, "bytes", "analysis sample").get<std::vector<int>>();
  const auto experts = need(sample, "experts", "analysis sample").get<std::vector<int>>();
  std::string o, run;
  int cur = -2;
  auto flush = [&]() {
    if (run.empty()) return;
    const std::string title = cur >= 0 ? "expert " + std::to_string(cur) : "no expert";
    const std::string bg = cur >= 0 ? expert_colour(cur, E) : "#ffffff";
    o += "<span style=\"background:" + bg + "\" title=\"" + title + "\">" + run + "</span>";
    run.clear();
  };
  for (size_t i = 0; i < bytes.size();) {
    // One character: a whole UTF-8 sequence, coloured by its first byte's expert.
    const auto b = static_cast<unsigned char>(bytes[i]);
    size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
    if (i + n > bytes.size()) n = 1;
    std::string ch;
    for (size_t k = 0; k < n; ++k) ch += static_cast<char>(bytes[i + k]);
    const int e = i < experts.size() ? experts[i] : -1;
    if (e != cur) flush(), cur = e;
    if (ch == "\n") run += "\u23CE\n";  // show the newline's colour, then break the line
    else run += html_escape(ch);
    i += n;
  }
  flush();
  return o;
}

// The smallest of 1, 2, 2.5, 5 × 10^n at or above v (at least `floor`).
double nice_max(double v, double floor) {
  v = std::max(v, floor);
  const double m = std::pow(10.0, std::floor(std::log10(v)));
  for (const double f : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (v <= f * m * (1 + 1e-9)) return f * m;
  return 10 * m;
}

std::string mi_part(const json& a, const std::vector<std::string>& domains) {
  const json& layers = need(a, "layers", "analysis");
  const bool soft = a.value("router", "") == "soft";
  std::vector<std::string> groups, series = {"first choice"};
  if (!soft) series.push_back("all chosen experts");
  std::vector<std::vector<double>> vals;
  double vmax = 0;
  std::string rows;
  for (const json& l : layers) {
    const int64_t layer = need(l, "layer", "analysis layer").get<int64_t>();
    groups.push_back("layer " + std::to_string(layer));
    std::vector<double> v = {need(l, "mi_first_norm", "analysis layer").get<double>()};
    if (!soft) v.push_back(need(l, "mi_all_norm", "analysis layer").get<double>());
    for (double x : v) vmax = std::max(vmax, x);
    vals.push_back(v);
    rows += "<tr><td>" + std::to_string(layer) + "</td><td>" + fmt_num(l.at("mi_first_bits").get<double>(), 4) + "</td><td>" +
            fmt_num(l.at("mi_first_norm").get<double>(), 3) + "</td><td>" + fmt_num(l.at("mi_all_bits").get<double>(), 4) +
            "</td><td>" + fmt_num(l.at("mi_all_norm").get<double>(), 3) + "</td><td>" +
            fmt_num(l.at("h_domain_bits").get<double>(), 4) + "</td></tr>";
  }
  std::string o = "<h3>Mutual information between expert and domain</h3>";
  o += "<figure>" + bar_chart_svg(groups, series, vals, nice_max(vmax, 0.001), "I(expert; domain) / H(domain)");
  o += "<figcaption>Normalised mutual information I(expert; domain) / H(domain) per MoE layer, measured over the " +
       fmt_int(need(a, "n_bytes", "analysis").get<int64_t>()) + " analysed bytes of " + std::to_string(domains.size()) +
       " domains. 0 = the expert tells nothing about the domain; 1 = it determines it. &#8220;First choice&#8221; counts "
       "each byte once (its highest-weight expert); &#8220;all chosen experts&#8221; counts every (byte, expert) pairing "
       "the router made.</figcaption></figure>";
  o += "<table class=\"num\"><thead><tr><th>layer</th><th>I first (bits)</th><th>normalised</th><th>I all (bits)</th>"
       "<th>normalised</th><th>H(domain) (bits)</th></tr></thead><tbody>" + rows + "</tbody></table>";
  return o;
}

std::string layer_part(const json& l, const std::vector<std::string>& domains, int E) {
  const int64_t layer = need(l, "layer", "analysis layer").get<int64_t>();
  const auto shares = need(l, "first_shares", "analysis layer").get<std::vector<std::vector<double>>>();
  const auto counts = need(l, "first_counts", "analysis layer").get<std::vector<std::vector<int64_t>>>();
  const std::string L = std::to_string(layer);
  int64_t total = 0;
  for (const auto& r : counts)
    for (int64_t v : r) total += v;
  std::vector<std::string> row_labels, extra;
  double vmax = 0;
  for (size_t e = 0; e < shares.size(); ++e) {
    row_labels.push_back("expert " + std::to_string(e));
    int64_t n = 0;
    for (int64_t v : counts[e]) n += v;
    extra.push_back(fmt_int(n) + " (" + fmt_pct(total > 0 ? static_cast<double>(n) / static_cast<double>(total) : 0) + ")");
    for (double v : shares[e]) vmax = std::max(vmax, v);
  }
  std::string o = "<h3 id=\"layer-" + L + "\">Layer " + L + "</h3>";
  o += "<figure>" + heatmap_svg(shares, row_labels, domains, extra, "tokens", std::min(1.0, std::ceil(vmax * 10 - 1e-9) / 10));
  o += "<figcaption>Layer " + L + ": the domain mix of each expert&#8217;s first-choice tokens (each row sums to 100%). "
       "The right column gives the expert&#8217;s share of all first-choice tokens. MI = " +
       fmt_num(l.at("mi_first_bits").get<double>(), 3) + " bits (" + fmt_pct(l.at("mi_first_norm").get<double>(), 1) +
       " of H(domain)).</figcaption></figure>";

  // Most frequent bytes per expert.
  const json& top = need(l, "top_tokens", "analysis layer");
  size_t ncol = 0;
  for (const json& t : top) ncol = std::max(ncol, t.size());
  o += "<div class=\"scroll\"><table class=\"tokens\"><caption>Layer " + L +
       ": the bytes most often routed to each expert (first choice), with their share of the expert&#8217;s tokens and "
       "their lift = P(byte | expert) / P(byte); lift &gt; 1 means the expert attracts the byte more than chance.</caption>"
       "<thead><tr><th>expert</th>";
  for (size_t i = 0; i < ncol; ++i) o += "<th>" + std::to_string(i + 1) + "</th>";
  o += "</tr></thead><tbody>";
  for (size_t e = 0; e < top.size(); ++e) {
    o += "<tr><th>" + swatch(static_cast<int>(e), E) + std::to_string(e) + "</th>";
    for (size_t i = 0; i < ncol; ++i) {
      if (i >= top[e].size()) {
        o += "<td></td>";
        continue;
      }
      const json& t = top[e][i];
      o += "<td><code>" + html_escape(need(t, "label", "top token").get<std::string>()) + "</code><br><small>" +
           fmt_pct(t.at("share").get<double>()) + " &#215;" + fmt_num(t.at("lift").get<double>(), 2) + "</small></td>";
    }
    o += "</tr>";
  }
  o += "</tbody></table></div>";

  // Coloured text.
  const json& samples = need(l, "samples", "analysis layer");
  if (!samples.empty()) {
    o += "<h4>Text coloured by first-choice expert</h4><div class=\"legend\">";
    for (int e = 0; e < E; ++e) o += "<span class=\"lg\">" + swatch(e, E) + "expert " + std::to_string(e) + "</span>";
    o += "</div>";
    for (const json& s : samples) {
      o += "<div class=\"sample\"><div class=\"dom\">" + html_escape(need(s, "domain", "analysis sample").get<std::string>()) +
           "</div><pre class=\"ct\">" + coloured_text(s, E) + "</pre></div>";
    }
    o += "<p class=\"caption\">Layer " + L + ": about 300 bytes of validation text per domain; each character&#8217;s "
         "background is the expert that layer routed it to first (hover for the number). &#9166; marks a newline.</p>";
  }
  return o;
}

}  // namespace

std::string analysis_section(const json& a, Toc& toc) {
  if (a.is_null()) return "";
  const auto domains = need(a, "domains", "analysis").get<std::vector<std::string>>();
  const int E = static_cast<int>(need(a, "n_experts", "analysis").get<int64_t>());
  const std::string router = a.value("router", "token_choice");
  toc.push_back({"analysis", "Routing analysis"});
  std::string o = "<section id=\"analysis\"><h2>Routing analysis: what the experts specialise in</h2>";
  o += "<p>Checkpoint <code>" + html_escape(a.value("checkpoint", "?")) + "</code> run over " +
       fmt_int(need(a, "n_bytes", "analysis").get<int64_t>()) + " bytes of the <code>" + html_escape(a.value("split", "val")) +
       "</code> split of <code>" + html_escape(a.value("data_dir", "?")) + "</code> (";
  const json& per = need(a, "bytes_per_domain", "analysis");
  for (size_t d = 0; d < domains.size(); ++d)
    o += (d ? ", " : "") + html_escape(domains[d]) + " " + (d < per.size() ? fmt_int(per[d].get<int64_t>()) : "?");
  o += " bytes), inference mode, in windows of the model&#8217;s context (" + fmt_int(a.value("context", int64_t{0})) +
       " bytes). Router: " + html_escape(router) + ", " + std::to_string(E) + " experts" +
       (router == "token_choice" ? ", top-" + std::to_string(a.value("top_k", int64_t{0})) : std::string()) + ".</p>";
  o += mi_part(a, domains);
  for (const json& l : need(a, "layers", "analysis")) {
    o += layer_part(l, domains, E);
    const std::string id = std::to_string(need(l, "layer", "analysis layer").get<int64_t>());
    toc.push_back({"layer-" + id, "Layer " + id, true});
  }
  o += "</section>";
  return o;
}

}  // namespace moe::report::detail
