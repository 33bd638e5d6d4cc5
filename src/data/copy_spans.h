// Copy spans: a training-data option (training.copy_spans, ours) that replaces spans of a training
// sequence with copies of earlier spans of the same sequence. A small model on natural text takes
// far more tokens than a CPU can give it before its attention learns to copy from context (the
// skill that pass-key retrieval tests, docs/results.md); text with repeats in it rewards copying
// from the first steps, and spans of random tokens reward nothing else. Each sequence's spans are
// drawn from its own seeded generator, keyed by the data seed and the sequence's draw index, so a
// resumed or re-sharded run sees the same text.
#pragma once

#include <cstdint>

namespace ttt {

struct CopySpanOptions {
  int64_t count = 0;    // spans copied into each sequence (0: off)
  int64_t length = 32;  // tokens per span
  // > 0: the source span is first overwritten with tokens drawn uniformly from [0, random_vocab),
  // so that only copying predicts its copy (training.copy_span_random); 0: the text's own tokens.
  int64_t random_vocab = 0;
};

// Applies `options.count` copies to tokens[0, n), in order: for each, a source span starting at s
// and a destination at d >= s + length, both drawn uniformly (s in [0, n - 2*length], d in
// [s + length, n - length]), optionally random tokens written at s, and tokens[d, d + length) =
// tokens[s, s + length). A later copy may overwrite an earlier one. Requires n >= 2 * length when
// count > 0 (throws std::invalid_argument).
void apply_copy_spans(int64_t* tokens, int64_t n, const CopySpanOptions& options, uint64_t seed, int64_t draw);

}  // namespace ttt
