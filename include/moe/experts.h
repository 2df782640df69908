// Experts: an MoE layer's expert FFNs are a stack of FFNs (moe/ffn.h) stored and run through the
// expert store (moe/expert_store.h); the MoE code keeps its own names for the FFN types.
#pragma once

#include <string>

#include "moe/ffn.h"

namespace moe {

using ExpertAct = FfnAct;
using ExpertConfig = FfnSpec;
template <class T>
using ExpertWeights = FfnWeights<T>;
template <class T>
using ExpertGrads = FfnGrads<T>;
inline ExpertAct parse_expert_act(const std::string& name) { return parse_ffn_act(name); }
inline const char* expert_act_name(ExpertAct act) { return ffn_act_name(act); }
inline ActivationGrad expert_activation(const ExpertConfig& c, double g, double u) { return ffn_activation(c, g, u); }

}  // namespace moe
