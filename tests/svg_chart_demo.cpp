// Writes the estimator's reference figure (active vs total parameters per token) as SVG, for
// tests/render_svg_check.py and for eyeballing. Usage: svg_chart_demo OUT.svg [--linear]
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>

#include "moe/svg_chart.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3 || (argc == 3 && std::strcmp(argv[2], "--linear") != 0)) {
    std::fprintf(stderr, "usage: %s OUT.svg [--linear]\n", argv[0]);
    return 2;
  }
  // Fine-grained experts: the dense SwiGLU FFN split into E experts, k=8 of them active,
  // plus a router of E x d. Active parameters shrink ~1/E, total stays ~ the dense FFN.
  constexpr double d = 7168, f = 28672, k = 8;
  constexpr double dense = 3 * d * f;
  moe::plot::ChartSpec spec;
  spec.title = "Active vs Total Parameters per Token\n"
               "(emb_dim=7168, hidden_dim=28672, ffn=swiglu, top_k=8)";
  spec.x_label = "Number of experts (top_k = 8)";
  spec.y_label = "Parameters";
  spec.y_log = argc == 2;
  moe::plot::Series active, total;
  active.label = "MoE active per token";
  active.marker = moe::plot::Marker::circle;
  total.label = "MoE total parameters";
  total.marker = moe::plot::Marker::square;
  total.style = moe::plot::LineStyle::dashed;
  for (double e : {1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 384, 512}) {
    const double router = e * d, all = dense + router;
    active.x.push_back(e);
    active.y.push_back(e <= k ? all : dense * k / e + router);
    total.x.push_back(e);
    total.y.push_back(all);
  }
  spec.series = {active, total};
  moe::plot::HLine dense_line;
  dense_line.label = "FFN dense (active = total)";
  dense_line.y = dense;
  spec.hlines = {dense_line};
  try {
    std::ofstream out(argv[1], std::ios::binary);
    out << moe::plot::render_svg(spec);
    if (!out.flush()) {
      std::fprintf(stderr, "svg_chart_demo: cannot write %s\n", argv[1]);
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "svg_chart_demo: %s\n", e.what());
    return 1;
  }
  return 0;
}
