// The stages of a Hugging Face tokenizer.json, each built from its JSON object: normalizer ->
// pre-tokenizer -> model (bpe.h) -> post-processor, and the decoder back. Each stage does what
// the Rust `tokenizers` crate's component of the same name does; a type this engine does not
// implement is an InvalidInput naming it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::text {

// A piece of text on its way to the model. `at_start`: it begins at offset 0 of the original
// input (Metaspace's prepend_scheme "first" prepends only there).
struct Piece {
  std::string text;
  bool at_start = false;
};

using Normalizer = std::function<std::string(std::string)>;
using PreTokenizer = std::function<void(std::vector<Piece>&)>;
using Decoder = std::function<void(std::vector<std::string>&)>;  // tokens -> tokens (Fuse joins them)

// Each returns an identity stage for JSON null. `where` names the file in errors.
Normalizer make_normalizer(const nlohmann::json& j, const std::string& where);
PreTokenizer make_pre_tokenizer(const nlohmann::json& j, const std::string& where);
Decoder make_decoder(const nlohmann::json& j, const std::string& where);
// Whether decoding a window of recent tokens gives the same new text as decoding them all (true
// for the decoders of every supported family; false when a Strip removes more than one leading
// character or any trailing one, whose effect depends on where the window starts or ends).
bool decoder_streams_by_window(const nlohmann::json& j);
// "<0x4A>" -> 0x4A (a byte-fallback token); -1 for any other token.
int byte_token(const std::string& token);
// Whether the decoder has a ByteFallback stage (a run of <0xNN> tokens decodes as one unit).
bool decoder_has_byte_fallback(const nlohmann::json& j);

}  // namespace moe::text
