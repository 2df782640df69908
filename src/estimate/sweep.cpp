// The reference plot's sweep (plot_memory_estimates_moe.py) as data, CSV and SVG.
#include <sstream>

#include "moe/error.h"
#include "moe/estimate.h"
#include "moe/svg_chart.h"

namespace moe::estimate {

std::vector<int64_t> sweep_expert_counts() { return {1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 384, 512}; }

Sweep sweep_experts(const SweepConfig& c) {
  if (c.max_experts < 1) {
    throw InvalidInput("[estimate] --max_experts=" + std::to_string(c.max_experts) + " must be a positive integer");
  }
  FfnConfig base;
  base.emb_dim = c.emb_dim;
  base.hidden_dim = c.hidden_dim;
  base.ffn_type = c.ffn_type;
  base.top_k = c.top_k;
  base.num_experts = c.top_k;  // validates the sizes and top_k once, before the sweep
  Sweep sweep;
  sweep.dense_params = estimate_ffn(base).dense_params;

  for (int64_t experts : sweep_expert_counts()) {
    if (experts > c.max_experts) continue;
    if (experts < c.top_k) {
      sweep.skipped.push_back({experts, "top_k=" + std::to_string(c.top_k) + " > num_experts"});
      continue;
    }
    FfnConfig point = base;
    point.num_experts = experts;
    // As the reference: match the dense size unless the router alone is already as large.
    point.match_dense = c.match_dense && sweep.dense_params > c.emb_dim * experts;
    try {
      sweep.points.push_back({experts, point.match_dense, estimate_ffn(point)});
    } catch (const InvalidInput& e) {
      sweep.skipped.push_back({experts, e.what()});
    }
  }
  if (sweep.points.empty()) {
    throw InvalidInput("[estimate] --plot/--csv: no expert count in the sweep makes a valid layer (top_k=" +
                       std::to_string(c.top_k) + ", --max_experts=" + std::to_string(c.max_experts) + ")");
  }
  return sweep;
}

std::string sweep_csv(const SweepConfig& c, const Sweep& sweep) {
  std::ostringstream out;
  out << "num_experts,top_k,moe_hidden_dim,matched_dense,moe_active_params,moe_total_params,dense_params\n";
  for (const SweepPoint& p : sweep.points) {
    out << p.num_experts << ',' << c.top_k << ',' << p.estimate.moe_hidden_dim << ','
        << (p.matched ? "true" : "false") << ',' << p.estimate.moe_active_params << ','
        << p.estimate.moe_total_params << ',' << sweep.dense_params << '\n';
  }
  return out.str();
}

std::string sweep_svg(const SweepConfig& c, const Sweep& sweep, bool y_log) {
  plot::ChartSpec chart;
  chart.title = "Active vs Total Parameters per Token\n(emb_dim=" + std::to_string(c.emb_dim) +
                ", hidden_dim=" + std::to_string(c.hidden_dim) + ", ffn=" + ffn_type_name(c.ffn_type) +
                ", top_k=" + std::to_string(c.top_k) + ")";
  chart.x_label = "Number of experts (top_k = " + std::to_string(c.top_k) + ")";
  chart.y_label = "Parameters";
  chart.y_log = y_log;
  plot::Series active{"MoE active per token", {}, {}, plot::Marker::circle, plot::LineStyle::solid, ""};
  plot::Series total{"MoE total parameters", {}, {}, plot::Marker::square, plot::LineStyle::dashed, ""};
  for (const SweepPoint& p : sweep.points) {
    active.x.push_back(static_cast<double>(p.num_experts));
    active.y.push_back(static_cast<double>(p.estimate.moe_active_params));
    total.x.push_back(static_cast<double>(p.num_experts));
    total.y.push_back(static_cast<double>(p.estimate.moe_total_params));
  }
  chart.series = {active, total};
  chart.hlines = {{"FFN dense (active = total)", static_cast<double>(sweep.dense_params),
                   plot::LineStyle::dotted, "black"}};
  return plot::render_svg(chart);
}

}  // namespace moe::estimate
