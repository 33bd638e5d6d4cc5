// The decoding state on disk, so a long document is read (prefilled, and learned from) once and
// queried many times: `ttt generate --save-state F` after the prompt, `--load-state F` later.
//
// One safetensors file, written to a temporary sibling and renamed into place (a crash never
// leaves a half-written state under the final name). Tensors: every KV cache (`cache.<block>.k/v`;
// full-attention caches only up to the position), the fast weights (`fast_weights.<parameter>`),
// the pending chunk (`pending.hidden`, `pending.ids`, `chunk_start_cache.<j>.k/v`), TTT-layer
// blocks' states (`ttt_block.<i>.{pre_conv_history,conv_q_history,conv_k_history,w1,b1,w2,b2}`, and
// `acc_*` inside a mini-batch), `seen` and
// `last_logits`. Metadata: format, version, position, and the model's fingerprint: the
// configuration lines that change what decoding computes, and a checksum of the weights.
#pragma once

#include <cstdint>
#include <string>

#include "infer/decoder.h"
#include "model/weights.h"
#include "util/safetensors.h"

namespace ttt {

struct ModelFingerprint {
  std::string config;            // "key: value" lines: the model fields used here (config/fields.h), decode.*
  std::string weights_checksum;  // 16 hex digits over every parameter's bytes, in layout order
};

ModelFingerprint model_fingerprint(const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w);

// Writes `state` atomically (temporary file + rename).
void save_decode_state(const std::string& path, const ModelConfig& cfg, const TttOptions& ttt, const ModelWeights& w,
                       const DecodeState& state);

// Reads a state written by save_decode_state for this model onto the weights' device. Throws
// std::runtime_error with one line naming the first configuration difference, or the weights
// checksum, when the file was written for another model.
DecodeState load_decode_state(const std::string& path, const ModelConfig& cfg, const TttOptions& ttt,
                              const ModelWeights& w);

// The same from a file already read (`path` names it in errors). Every tensor is checked against
// this model's state: dtype, shape, finite values; a position that is not a number in range, a
// missing or unexpected tensor are each one line naming the file.
DecodeState decode_state_from(SafetensorsFile& file, const std::string& path, const ModelConfig& cfg,
                              const TttOptions& ttt, const ModelWeights& w);

}  // namespace ttt
