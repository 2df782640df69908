// The traits table of the expert storage formats (src/moe/expert_formats.h): the one place that
// maps a format to its kernels. A new format (block-quantised, offloaded) is a new row here.
#include "expert_formats.h"

#include "kernels/cpu/grouped_ffn.h"
#include "kernels/ref/grouped_ffn.h"

namespace moe::detail {

namespace {

// f64: the float64 reference kernels.
void ref_rows_forward(const ExpertStore& s, const RowGroups& rows, const void* x, void* out, const RowActs& a, int,
                      Workspace&) {
  ref::grouped_ffn_forward<double>(s.spec, s.f64, rows, static_cast<const double*>(x), static_cast<double*>(a.pre_gate),
                                   static_cast<double*>(a.pre_up), static_cast<double*>(a.hidden),
                                   static_cast<double*>(out));
}
void ref_rows_backward(const ExpertStore& s, const RowGroups& rows, const void* x, const RowActs& a, const void* dout,
                       void* dx_rows, const void* grads, int, Workspace& ws) {
  const auto I = static_cast<size_t>(s.spec.hidden);
  double* scratch = ws.get(3 * I * sizeof(double)).take<double>(3 * I);
  ref::grouped_ffn_backward<double>(s.spec, s.f64, rows, static_cast<const double*>(x),
                                    static_cast<const double*>(a.pre_gate), static_cast<const double*>(a.pre_up),
                                    static_cast<const double*>(a.hidden), static_cast<const double*>(dout),
                                    static_cast<double*>(dx_rows), *static_cast<const FfnGrads<double>*>(grads),
                                    scratch);
}

// f32: the training path's grouped GEMMs over the weights as stored.
cpu::FfnRowActs f32_acts(const RowActs& a, void* out) {
  return {static_cast<float*>(a.pre_gate), static_cast<float*>(a.pre_up), static_cast<float*>(a.hidden),
          static_cast<float*>(out)};
}
void train_rows_forward(const ExpertStore& s, const RowGroups& rows, const void* x, void* out, const RowActs& a,
                        int threads, Workspace& ws) {
  const Scratch scratch = ws.get(cpu::grouped_ffn_train_forward_scratch_bytes(s.f32, rows, threads));
  cpu::grouped_ffn_train_forward(s.spec, s.f32, rows, static_cast<const float*>(x), f32_acts(a, out), threads, scratch);
}
void train_rows_backward(const ExpertStore& s, const RowGroups& rows, const void* x, const RowActs& a, const void* dout,
                         void* dx_rows, const void* grads, int threads, Workspace& ws) {
  const Scratch scratch = ws.get(cpu::grouped_ffn_train_backward_scratch_bytes(s.f32, rows, threads));
  cpu::grouped_ffn_train_backward(s.spec, s.f32, rows, static_cast<const float*>(x), f32_acts(a, nullptr),
                                  static_cast<const float*>(dout), static_cast<float*>(dx_rows),
                                  *static_cast<const FfnGrads<float>*>(grads), threads, scratch);
}

// packed: the inference kernels over tile panels (f32 or bf16: the panels know their dtype).
void packed_rows_forward(const ExpertStore& s, const RowGroups& rows, const void* x, void* out, const RowActs&,
                         int threads, Workspace& ws) {
  const Scratch scratch = ws.get(cpu::grouped_ffn_forward_scratch_bytes(*s.packed, rows.n_rows(), threads));
  cpu::grouped_ffn_forward(*s.packed, rows, static_cast<const float*>(x), {}, static_cast<float*>(out), threads, scratch);
}
void packed_fused_forward(const ExpertStore& s, const RowGroups& rows, const int32_t* dst, const float* scale,
                          int64_t n_out, const void* x, void* y, int threads, Workspace& ws) {
  const Scratch scratch = ws.get(cpu::grouped_ffn_forward_scratch_bytes(*s.packed, rows.n_rows(), threads));
  cpu::grouped_ffn_forward(*s.packed, rows, static_cast<const float*>(x), {dst, scale, n_out}, static_cast<float*>(y),
                           threads, scratch);
}

constexpr ExpertFormatTraits kTraits[] = {
    // name          weights      activations  trains packed rows_forward          rows_backward        fused_forward
    {"f64", DType::f64, DType::f64, true, false, ref_rows_forward, ref_rows_backward, nullptr},
    {"f32", DType::f32, DType::f32, true, false, train_rows_forward, train_rows_backward, nullptr},
    {"packed_f32", DType::f32, DType::f32, false, true, packed_rows_forward, nullptr, packed_fused_forward},
    {"packed_bf16", DType::bf16, DType::f32, false, true, packed_rows_forward, nullptr, packed_fused_forward},
};

}  // namespace

const ExpertFormatTraits& format_traits(ExpertFormat f) { return kTraits[static_cast<int>(f)]; }

}  // namespace moe::detail
