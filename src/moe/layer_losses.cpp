// Balance losses of a routed layer: adapter from the layer state to src/moe/losses*.cpp.
#include "layer_internal.h"
#include "moe/error.h"

namespace moe::detail {

template <class T>
void layer_losses(const MoeLayerConfig& c, const LayerInputs&, MoeLayerState<T>& st) {
  double total = 0;
  for (const auto& [name, coef] : c.losses.coef) {
    if (coef != 0) throw InvalidInput("[layer] loss '" + name + "' is not available yet");
  }
  st.losses["aux_total"] = total;
}

template <class T>
void layer_losses_backward(const MoeLayerConfig&, const LayerInputs&, const MoeLayerState<T>&, T*) {}

template void layer_losses<float>(const MoeLayerConfig&, const LayerInputs&, MoeLayerState<float>&);
template void layer_losses<double>(const MoeLayerConfig&, const LayerInputs&, MoeLayerState<double>&);
template void layer_losses_backward<float>(const MoeLayerConfig&, const LayerInputs&, const MoeLayerState<float>&, float*);
template void layer_losses_backward<double>(const MoeLayerConfig&, const LayerInputs&, const MoeLayerState<double>&, double*);

}  // namespace moe::detail
