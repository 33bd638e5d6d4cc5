// The safetensors format (an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw little-endian data), so weights written here
// open in any safetensors library and the reverse.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ttt {

struct SafetensorsFile {
  std::map<std::string, torch::Tensor> tensors;  // CPU, contiguous
  std::map<std::string, std::string> metadata;
};

// Writes the tensors (moved to CPU, made contiguous) in the given order. Not atomic by itself:
// callers write into a temporary location and rename.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads a whole file. Everything is checked against the file's size before any tensor is
// allocated; a truncated file, a bad header, an unsupported dtype, a byte range that does not
// match its shape, overlaps another or runs past the end, and a non-string metadata value are each
// a std::runtime_error naming the file (and the tensor).
SafetensorsFile load_safetensors(const std::string& path);

// The same from the file's bytes in memory; `name` names it in errors.
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& name);

// The safetensors dtype name of a tensor dtype ("F32", "BF16", ...).
const char* safetensors_dtype_name(torch::ScalarType type);

}  // namespace ttt
